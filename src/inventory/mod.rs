//! The inventory: KeyBuzz's `servers.tsv`, its validation, and the fleet model (hosts grouped
//! into service clusters) that every other part of kbz reads.

mod error;
mod fleet;
pub mod glob;
mod parse;
mod rules;
mod select;
mod validate;

pub use error::{InventoryError, Problem};
pub use fleet::{Cluster, Fleet};
pub use parse::parse;
pub use rules::{FleetConfig, Rule, RuleSet, Technology, fleet_config, vars_for_inventory};
pub use select::select;
pub use validate::{is_host_name, is_user_name};

use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The columns of the team's file, in their order. Columns are found by name, not position;
/// these are the ones kbz understands, any other is kept as an extra.
pub const KNOWN_COLUMNS: [&str; 12] = [
    "ENV",
    "IP_PUBLIQUE",
    "HOSTNAME",
    "IP_PRIVEE",
    "FQDN",
    "USER_SSH",
    "POOL",
    "ROLE",
    "SUBROLE",
    "DOCKER_STACK",
    "CORE",
    "NOTES",
];

/// Columns without which a row means nothing.
pub const REQUIRED_COLUMNS: [&str; 3] = ["HOSTNAME", "IP_PRIVEE", "ROLE"];

/// One row of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    pub hostname: String,
    pub ip_private: IpAddr,
    pub ip_public: Option<IpAddr>,
    pub env: String,
    pub fqdn: Option<String>,
    /// USER_SSH, `root` when the column is absent or empty.
    pub user: String,
    pub pool: String,
    pub role: String,
    /// The *initial* role the installer gave the host; live roles come from probes.
    pub subrole: String,
    pub docker_stack: String,
    pub core: String,
    pub notes: String,
    /// Columns kbz does not know, kept as they were (newer files append columns).
    pub extra: BTreeMap<String, String>,
    /// Line of the row in its file, for messages that point back at it.
    pub line: usize,
}

impl Host {
    /// The value of a column by its header name (case-insensitive), as written in the file.
    pub fn column(&self, name: &str) -> Option<Cow<'_, str>> {
        let upper = name.to_ascii_uppercase();
        let known = match upper.as_str() {
            "ENV" => &self.env,
            "HOSTNAME" => &self.hostname,
            "USER_SSH" => &self.user,
            "POOL" => &self.pool,
            "ROLE" => &self.role,
            "SUBROLE" => &self.subrole,
            "DOCKER_STACK" => &self.docker_stack,
            "CORE" => &self.core,
            "NOTES" => &self.notes,
            "IP_PRIVEE" => return Some(Cow::Owned(self.ip_private.to_string())),
            "IP_PUBLIQUE" => return self.ip_public.map(|ip| Cow::Owned(ip.to_string())),
            "FQDN" => return self.fqdn.as_deref().map(Cow::Borrowed),
            _ => return self.extra.get(&upper).map(|v| Cow::Borrowed(v.as_str())),
        };
        Some(Cow::Borrowed(known))
    }
}

/// A parsed, valid inventory file: every row, all ENVs.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub file: PathBuf,
    /// Header names as written (upper-cased), in file order.
    pub columns: Vec<String>,
    pub hosts: Vec<Host>,
}

impl Inventory {
    /// Reads and validates a file. An unreadable file is reported as a problem of that file.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        match std::fs::read(path) {
            Ok(bytes) => parse(path, &bytes),
            Err(e) => Err(InventoryError {
                file: path.to_path_buf(),
                problems: vec![Problem::new(
                    path,
                    0,
                    0,
                    format!("cannot read the file: {e}"),
                )],
            }),
        }
    }

    /// The ENVs present, in order of first appearance.
    pub fn envs(&self) -> Vec<String> {
        let mut envs: Vec<String> = Vec::new();
        for h in &self.hosts {
            if !envs.contains(&h.env) {
                envs.push(h.env.clone());
            }
        }
        envs
    }

    /// The ENV a fleet shows when none is asked for: the only one, else `prod` (the team's
    /// scripts work on prod), else the first in the file.
    pub fn default_env(&self) -> String {
        let envs = self.envs();
        if envs.len() == 1 || !envs.iter().any(|e| e == "prod") {
            envs.into_iter().next().unwrap_or_default()
        } else {
            "prod".into()
        }
    }
}
