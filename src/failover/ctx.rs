//! What a failover run works with: the fleet, its connections, its configuration, where
//! to write, and whether it is kbz's lab.

use crate::inventory::{Fleet, FleetConfig};
use crate::paths::Paths;
use crate::ssh::Pool;
use std::sync::Arc;

pub struct Ctx {
    pub pool: Pool,
    pub fleet: Arc<Fleet>,
    pub config: FleetConfig,
    pub paths: Paths,
    /// The fleet is kbz's lab (the crash fault needs it).
    pub lab: bool,
}
