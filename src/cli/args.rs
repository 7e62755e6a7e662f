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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check and show the inventory (servers.tsv).
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Show kbz's config, state and cache paths and where the inventory was found.
    Info,
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
