//! `kbz lab up|down|status|fault`.

use super::LabCommand;
use crate::lab::{self, HostState};
use crate::paths::Paths;
use color_eyre::eyre::{Result, eyre};
use std::process::ExitCode;
use std::time::Instant;

fn say(msg: &str) {
    eprintln!("{msg}");
}

pub fn run(cmd: LabCommand) -> Result<ExitCode> {
    let paths = Paths::from_env().map_err(|e| eyre!(e))?;
    match cmd {
        LabCommand::Up { profile, hosts } => {
            let t = Instant::now();
            let r = lab::up(&paths, profile, hosts, &say).map_err(|e| eyre!(e))?;
            if r.started.is_empty() {
                outln!(
                    "lab up: all {} hosts already running",
                    r.already_running.len()
                );
            } else {
                outln!(
                    "lab up: {} host(s) started{}, all answering SSH {:.1} s after boot ({:.1} s in all)",
                    r.started.len(),
                    if r.already_running.is_empty() {
                        String::new()
                    } else {
                        format!(", {} already running", r.already_running.len())
                    },
                    r.ready_after.as_secs_f64(),
                    t.elapsed().as_secs_f64()
                );
            }
            outln!(
                "inventory: {}  (use `kbz --lab ...`)",
                r.servers_tsv.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Down => {
            let t = Instant::now();
            let r = lab::down(&paths, &say).map_err(|e| eyre!(e))?;
            if r.leftovers.is_empty() {
                outln!(
                    "lab down: {} host(s) stopped in {:.1} s; nothing of the lab is left (no process, interface, mount or file)",
                    r.stopped,
                    t.elapsed().as_secs_f64()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("lab down: could not remove:");
                for l in &r.leftovers {
                    eprintln!("  {l}");
                }
                Ok(ExitCode::FAILURE)
            }
        }
        LabCommand::Status { json } => {
            let Some(hosts) = lab::status(&paths).map_err(|e| eyre!(e))? else {
                if json {
                    outln!("{{\"hosts\":[]}}");
                } else {
                    outln!("no lab (start one with `kbz lab up`)");
                }
                return Ok(ExitCode::SUCCESS);
            };
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "hosts": hosts }))?
                );
            } else {
                let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(4);
                for h in &hosts {
                    let state = serde_json::to_value(h.state)?;
                    outln!(
                        "{:width$}  {:15}  {}",
                        h.name,
                        h.ip.to_string(),
                        state.as_str().unwrap_or("?")
                    );
                }
                let up = hosts.iter().filter(|h| h.state == HostState::Up).count();
                outln!("{up}/{} up", hosts.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Fault { host, fault } => {
            let t = Instant::now();
            lab::fault(&paths, &host, fault, &say).map_err(|e| eyre!(e))?;
            outln!(
                "{host}: {fault:?} done in {:.2} s",
                t.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
