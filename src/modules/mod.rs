//! Modules: the catalogue (`assets/modules/` and the user's own), plans, the runner that
//! executes them over SSH with per-host progress and logs, the record of every run, and the
//! secrets the scripts need.

pub mod catalogue;
pub mod plan;
pub mod record;
pub mod runner;
pub mod secrets;

pub use catalogue::{Catalogue, Module, Phase};
pub use plan::{Plan, Selection, plan};
pub use runner::{RunEvent, Runner};
