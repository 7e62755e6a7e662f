//! Headless front end: each subcommand calls into the engine and prints for people or, with
//! `--json`, for scripts.

/// `println!` for command output: a closed pipe (`kbz ... | head`) ends the command quietly
/// with the conventional status 141 instead of a panic.
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::emit(format_args!($($t)*), true) };
}
/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::emit(format_args!($($t)*), false) };
}

mod args;
mod endpoints;
mod exec;
mod failover;
mod install;
mod inventory;
mod lab;
mod logs;
mod remote;
mod status;

pub use args::{Cli, Command, Global, InventoryCommand, LabCommand, RunsCommand};

use crate::modules::Selection;
use crate::paths::{InventorySource, Paths, locate_inventory};
use color_eyre::eyre::{Result, eyre};
use std::path::PathBuf;
use std::process::ExitCode;

/// The inventory in use and how it was found: `--lab`, then the usual lookup order.
pub fn inventory_path(global: &Global) -> Result<(PathBuf, InventorySource)> {
    if global.lab && global.inventory.is_none() {
        let paths = Paths::from_env().map_err(|e| eyre!(e))?;
        let file = crate::lab::inventory(&paths).map_err(|e| eyre!(e))?;
        return Ok((file, InventorySource::Lab));
    }
    locate_inventory(global.inventory.as_deref()).map_err(|e| eyre!(e))
}

/// Runs a parsed command line. `Err` is a failure (exit 1) reported with its cause chain.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Inventory(cmd)) => inventory::run(&cli.global, cmd),
        Some(Command::Info) => info(&cli.global),
        Some(Command::Lab(cmd)) => lab::run(cmd),
        Some(Command::Exec {
            selector,
            json,
            sudo,
            command,
        }) => exec::run(&cli.global, &selector, &command, json, sudo),
        Some(Command::Logs {
            host,
            unit,
            file,
            follow,
            lines,
        }) => logs::run(
            &cli.global,
            &host,
            unit.as_deref(),
            file.as_deref(),
            follow,
            lines,
        ),
        Some(Command::Tunnel {
            host,
            port,
            remote_host,
        }) => tunnel(&cli.global, &host, port, &remote_host),
        Some(Command::Install {
            module,
            from,
            skip_cleanup,
            dry_run,
            yes,
        }) => {
            let selection = match (module, from) {
                (Some(n), _) => Selection::One(n),
                (None, Some(n)) => Selection::From(n),
                (None, None) => Selection::All,
            };
            let how = install::How {
                install: true,
                skip_cleanup,
                dry_run,
                yes,
            };
            install::run(&cli.global, selection, how)
        }
        Some(Command::Cleanup {
            module,
            all: _,
            dry_run,
            yes,
        }) => {
            let selection = module.map_or(Selection::All, Selection::One);
            let how = install::How {
                install: false,
                skip_cleanup: false,
                dry_run,
                yes,
            };
            install::run(&cli.global, selection, how)
        }
        Some(Command::Modules) => install::catalogue(&cli.global),
        Some(Command::Status {
            cluster,
            json,
            hosts: true,
            ..
        }) => status::hosts(&cli.global, cluster.as_deref(), json),
        Some(Command::Status {
            cluster,
            json,
            watch,
            ..
        }) => status::status(&cli.global, cluster.as_deref(), json, watch),
        Some(Command::Doctor { cluster, json }) => {
            status::doctor(&cli.global, cluster.as_deref(), json)
        }
        Some(Command::Failover(args)) => failover::failover(&cli.global, args),
        Some(Command::Endpoints { json, via }) => endpoints::run(&cli.global, json, via.as_deref()),
        Some(Command::Runs { command }) => install::runs(command),
        None => console(&cli.global),
    }
}

/// `kbz` alone: the full-screen console, when there is a terminal to draw on.
fn console(global: &Global) -> Result<ExitCode> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "kbz: stdout is not a terminal, so no console; headless commands: `kbz inventory show --json`, \
             `kbz exec SELECTOR -- CMD`, `kbz logs HOST`, `kbz lab status --json`"
        );
        return Ok(ExitCode::from(2));
    }
    let (fleet, pool) = remote::fleet_and_pool(global)?;
    let opts = crate::tui::Options {
        theme: global.theme.clone(),
        readonly: global.readonly,
        paths: Paths::from_env().map_err(|e| eyre!(e))?,
        lab: global.lab,
    };
    let app = crate::tui::prepare(fleet, &opts).map_err(|e| eyre!(e))?;
    remote::watching_runtime()?.block_on(crate::tui::run(app, pool, opts.paths))?;
    Ok(ExitCode::SUCCESS)
}

fn tunnel(global: &Global, host: &str, port: u16, remote_host: &str) -> Result<ExitCode> {
    let (fleet, pool) = remote::fleet_and_pool(global)?;
    let chosen = crate::inventory::select(&fleet, host).map_err(|e| eyre!(e))?;
    let [h] = chosen.as_slice() else {
        return Err(eyre!(
            "{host:?} names {} hosts; a tunnel goes through one",
            chosen.len()
        ));
    };
    let target = pool.target(h);
    remote::runtime()?.block_on(async {
        let t = pool
            .tunnel(&target, remote_host, port)
            .await
            .map_err(|s| eyre!("{host}: {}", s.explain(host)))?;
        outln!(
            "{} -> {host} -> {remote_host}:{port}  (Ctrl-C to close)",
            t.local
        );
        let _ = tokio::signal::ctrl_c().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn info(global: &Global) -> Result<ExitCode> {
    let paths = Paths::from_env().map_err(|e| eyre!(e))?;
    outln!("config     {}", paths.config.display());
    outln!("state      {}", paths.state.display());
    outln!("cache      {}", paths.cache.display());
    match inventory_path(global) {
        Ok((file, source)) => outln!("inventory  {} ({})", file.display(), source.describe()),
        Err(e) => outln!("inventory  none: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[doc(hidden)]
pub fn emit(args: std::fmt::Arguments, newline: bool) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let result = stdout.write_fmt(args).and_then(|_| {
        if newline {
            stdout.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = result
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(141);
    }
}
