//! Headless front end: each subcommand calls into the engine and prints for people or, with
//! `--json`, for scripts.

mod args;
mod inventory;

pub use args::{Cli, Command, Global, InventoryCommand};

use crate::paths::{Paths, locate_inventory};
use color_eyre::eyre::{Result, eyre};
use std::process::ExitCode;

/// Runs a parsed command line. `Err` is a failure (exit 1) reported with its cause chain.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Inventory(cmd)) => inventory::run(&cli.global, cmd),
        Some(Command::Info) => info(&cli.global),
        None => Err(eyre!(
            "the full-screen console is not built yet; try `kbz inventory show`"
        )),
    }
}

fn info(global: &Global) -> Result<ExitCode> {
    let paths = Paths::from_env().map_err(|e| eyre!(e))?;
    println!("config     {}", paths.config.display());
    println!("state      {}", paths.state.display());
    println!("cache      {}", paths.cache.display());
    match locate_inventory(global.inventory.as_deref()) {
        Ok((file, source)) => println!("inventory  {} ({})", file.display(), source.describe()),
        Err(e) => println!("inventory  none: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}
