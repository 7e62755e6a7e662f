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
    /// Use the running lab: its inventory (unless --inventory names another), SSH key and
    /// known_hosts.
    #[arg(long, global = true)]
    pub lab: bool,
    /// Accept and record the host key of a host known_hosts has never seen (a changed key is
    /// always refused), like StrictHostKeyChecking=accept-new.
    #[arg(long, global = true)]
    pub accept_new: bool,
    /// OpenSSH client config to honour (default: ~/.ssh/config), like `ssh -F`.
    #[arg(long, global = true, value_name = "FILE")]
    pub ssh_config: Option<std::path::PathBuf>,
    /// Refuse every action that changes a host (they are shown greyed in the console).
    #[arg(long, global = true)]
    pub readonly: bool,
    /// Console theme: default, light, high-contrast, or one of yours in
    /// $XDG_CONFIG_HOME/kbz/themes (default: per ENV from config.toml; prod: high-contrast).
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,
    /// Seconds allowed for TCP connect, SSH handshake and authentication.
    #[arg(long, global = true, default_value_t = 10, value_name = "S")]
    pub connect_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check and show the inventory (servers.tsv).
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Show kbz's config, state and cache paths and where the inventory was found.
    Info,
    /// Run a command on many hosts at once.
    Exec {
        /// Hosts: names, globs (redis-*), cluster names, all; comma-separated.
        selector: String,
        /// One object per host (exit, duration, stdout, stderr) instead of prefixed lines.
        #[arg(long)]
        json: bool,
        /// Run through `sudo -n` (for a non-root USER_SSH).
        #[arg(long)]
        sudo: bool,
        /// The command, as `ssh HOST CMD...` takes it (words joined by spaces).
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Stream a host's journal, one unit, or a file; resumes after a lost connection.
    Logs {
        host: String,
        #[arg(long, conflicts_with = "file")]
        unit: Option<String>,
        #[arg(long)]
        file: Option<String>,
        #[arg(short, long)]
        follow: bool,
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
    },
    /// Forward a local port to HOST's view of REMOTE_HOST:PORT (like ssh -L), until Ctrl-C.
    Tunnel {
        host: String,
        port: u16,
        /// The address to reach from HOST (default: HOST itself, 127.0.0.1).
        #[arg(long, default_value = "127.0.0.1")]
        remote_host: String,
    },
    /// The lab: a fleet of real Debian hosts on this machine (needs root).
    #[command(subcommand)]
    Lab(LabCommand),
    /// Install modules: for each, cleanup (unless --skip-cleanup), install, verify.
    Install {
        /// Only this module.
        #[arg(long, value_name = "N", conflicts_with = "from")]
        module: Option<u32>,
        /// This module and every later one (alias --start-from-module).
        #[arg(long, alias = "start-from-module", value_name = "N")]
        from: Option<u32>,
        #[arg(long)]
        skip_cleanup: bool,
        /// Print the plan and the exact commands; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask before starting.
        #[arg(long)]
        yes: bool,
    },
    /// Remove what modules installed (services stopped and disabled, data wiped). Dangerous.
    Cleanup {
        #[arg(
            long,
            value_name = "N",
            conflicts_with = "all",
            required_unless_present = "all"
        )]
        module: Option<u32>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        yes: bool,
    },
    /// The module catalogue.
    Modules,
    /// Each cluster as its services say: members, live roles, lag, leader, quorum, warnings.
    Status {
        cluster: Option<String>,
        #[arg(long)]
        json: bool,
        /// Then one line per change, as the console sees them, until Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// Each host's basics instead: load, memory, disk use, failed units, clock offset.
        #[arg(long, conflicts_with = "watch")]
        hosts: bool,
    },
    /// Would each cluster fail over if its leader (or any one host) died now? If not, why, and
    /// the fix. Exit 1 when some would not.
    Doctor {
        cluster: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A measured failover test: preflight, a real client workload, one fault on the leader (or
    /// a host), healed no matter what; detection, new leader, write gap, lost writes, split
    /// brain, reintegration; a Markdown / JSON / SVG report. Refused in --readonly.
    Failover(super::failover::Args),
    /// Each service endpoint checked in its own protocol through an SSH tunnel: PostgreSQL
    /// `SELECT 1` on the primary, Redis `PING` on the master; round trip and who answered.
    /// Exit 1 when one fails.
    Endpoints {
        #[arg(long)]
        json: bool,
        /// The host the tunnels go through (default: the orchestrator, else the first host).
        #[arg(long, value_name = "HOST")]
        via: Option<String>,
    },
    /// Recorded install and cleanup runs; `kbz runs show ID` prints one.
    Runs {
        #[command(subcommand)]
        command: Option<RunsCommand>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: its modules, phases, hosts, timings, and the failed hosts' last lines.
    Show { id: String },
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
