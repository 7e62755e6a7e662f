//! What the commands that reach hosts share: SSH options from the flags, the runtime, and
//! host-name colouring.

use super::Global;
use crate::inventory::Fleet;
use crate::lab::LabPaths;
use crate::paths::Paths;
use crate::ssh::{Pool, SshOptions};
use color_eyre::eyre::{Result, eyre};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// The fleet and a connection pool for it, honouring --lab, --accept-new, --connect-timeout.
pub fn fleet_and_pool(global: &Global) -> Result<(Fleet, Pool)> {
    let file = super::inventory_path(global)?.0;
    let fleet = super::inventory::load_fleet(&file, global.env.as_deref())?;
    let mut opts = SshOptions::user_defaults();
    if global.lab {
        let lab = LabPaths::new(&Paths::from_env().map_err(|e| eyre!(e))?);
        opts = opts.with_lab(&lab.key, &lab.known_hosts);
    }
    opts.accept_new = global.accept_new;
    if let Some(cfg) = &global.ssh_config {
        opts.ssh_config = Some(cfg.clone());
    }
    opts.connect_timeout = Duration::from_secs(global.connect_timeout.max(1));
    let pool = Pool::new(opts).map_err(|e| eyre!(e))?;
    Ok((fleet, pool))
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    runtime_with(2)
}

/// For what stays open and mostly waits (the console, `status --watch`): one worker. Two
/// cost the idle console a third more CPU in wake-ups between them (measured: 1.1% of a core
/// against 0.8%, 15 hosts), and the work is I/O.
pub fn watching_runtime() -> Result<tokio::runtime::Runtime> {
    runtime_with(1)
}

fn runtime_with(workers: usize) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?)
}

/// ANSI colours for host prefixes, when stdout is a terminal and NO_COLOR is unset.
pub struct Painter {
    on: bool,
}

impl Painter {
    pub fn for_stdout() -> Painter {
        Painter {
            on: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// The host name padded to `width`, in a colour of its own.
    pub fn host(&self, name: &str, width: usize) -> String {
        if !self.on {
            return format!("{name:width$}");
        }
        const COLOURS: [u8; 6] = [31, 32, 33, 34, 35, 36];
        let sum: usize = name.bytes().map(usize::from).sum();
        format!("\x1b[{}m{name:width$}\x1b[0m", COLOURS[sum % COLOURS.len()])
    }

    pub fn bad(&self, text: &str) -> String {
        if self.on {
            format!("\x1b[1;31m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Asks on the terminal before something destructive: `yes`, or in ENV prod the ENV's name.
pub fn confirmed(env: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(eyre!(
            "not confirmed: stdin is not a terminal; run again with --yes to start without asking"
        ));
    }
    let word = if env.eq_ignore_ascii_case("prod") {
        env.to_string()
    } else {
        "yes".into()
    };
    out!("type {word} to start: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == word)
}
