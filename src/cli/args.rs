//! The command line. Every action of the console also exists here, for scripts and CI.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "kbz", version, about = "KeyBuzz fleet console", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct Global {
    /// Inventory file (default: $KBZ_INVENTORY, then ./servers.tsv).
    #[arg(short, long, global = true, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// ENV to work on (default: the only one, else prod, else the first in the file).
    #[arg(long, global = true, value_name = "ENV")]
    pub env: Option<String>,
    /// Use the running lab: its inventory, SSH key and known_hosts.
    #[arg(long, global = true, conflicts_with = "inventory")]
    pub lab: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check and show the inventory (servers.tsv).
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Show kbz's config, state and cache paths and where the inventory was found.
    Info,
    /// The lab: a fleet of real Debian hosts on this machine (needs root).
    #[command(subcommand)]
    Lab(LabCommand),
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Boot the lab (building its image once); a running lab only gets what it misses.
    Up {
        #[arg(long, value_enum, default_value = "core")]
        profile: crate::lab::Profile,
        /// Generic app hosts to add (app-001...), for fan-out benchmarks.
        #[arg(long, default_value_t = 0, value_name = "N")]
        hosts: usize,
    },
    /// Stop every host and remove everything the lab made.
    Down,
    /// Each host, its address and state (up, booting, down, frozen, cut).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// A host-level fault from outside the host.
    Fault {
        host: String,
        #[arg(value_enum)]
        fault: crate::lab::Fault,
    },
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Validate the inventory: exit 0 with a summary, or 1 with every error.
    Check {
        /// Inventory file (overrides --inventory).
        file: Option<PathBuf>,
    },
    /// Show the clusters and their hosts.
    Show {
        /// Inventory file (overrides --inventory).
        file: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}
