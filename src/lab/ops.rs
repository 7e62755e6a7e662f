//! What the lab says of its hosts, and the faults it injects into them from outside.

use super::state::{LabPaths, Lock, ctx, ip_of, load, save};
use super::sys::Cgroups;
use super::{etc_hosts, host, net, preflight, wait_ssh};
use crate::paths::Paths;
use serde::Serialize;
use std::net::Ipv4Addr;
use std::time::Duration;

/// What `kbz lab status` says of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// Running and answering SSH.
    Up,
    /// Running, SSH not answering yet (or any more).
    Booting,
    Down,
    Frozen,
    Cut,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub ip: Ipv4Addr,
    pub state: HostState,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// Kill every process of the host at once (power cut).
    Crash,
    /// Boot the host again (a running host is rebooted cleanly).
    Restart,
    /// Take its link down from outside (cable pulled).
    Cut,
    /// Bring its link back up.
    Restore,
    /// Stop every process of the host (SIGSTOP-like, via the freezer cgroup).
    Freeze,
    /// Continue a frozen host.
    Thaw,
}

/// Each host's state, as seen from outside.
pub fn status(paths: &Paths) -> Result<Option<Vec<HostStatus>>, String> {
    let p = LabPaths::new(paths);
    let Some(state) = load(&p)? else {
        return Ok(None);
    };
    let cgroups = Cgroups::detect();
    let list = std::thread::scope(|s| {
        let handles: Vec<_> = state
            .hosts
            .iter()
            .map(|h| {
                let cgroups = &cgroups;
                let net = state.net;
                s.spawn(move || {
                    let ip = ip_of(net, h.spec.octet);
                    let running = h
                        .pid
                        .is_some_and(|pid| host::is_our_nspawn(pid, &h.spec.name));
                    let state = if !running {
                        HostState::Down
                    } else if cgroups.is_frozen(&h.spec.name) {
                        HostState::Frozen
                    } else if !net::link_is_up(h.spec.octet) {
                        HostState::Cut
                    } else if host::ssh_banner(ip, Duration::from_millis(800)) {
                        HostState::Up
                    } else {
                        HostState::Booting
                    };
                    HostStatus {
                        name: h.spec.name.clone(),
                        ip,
                        state,
                        pid: h.pid.filter(|_| running),
                    }
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    Ok(Some(list))
}

/// A host-level fault from outside the host.
pub fn fault(
    paths: &Paths,
    name: &str,
    fault: Fault,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    preflight()?;
    let p = LabPaths::new(paths);
    let _lock = Lock::take(&p.dir)?;
    let mut state = load(&p)?.ok_or("no lab: start one with `kbz lab up`")?;
    let i = state
        .hosts
        .iter()
        .position(|h| h.spec.name == name)
        .ok_or_else(|| {
            format!(
                "no lab host {name:?}; lab hosts: {}",
                state
                    .hosts
                    .iter()
                    .map(|h| h.spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let cgroups = Cgroups::detect();
    let etc_hosts = etc_hosts(&state);
    let pubkey = p.key.with_extension("pub");
    let running = state.hosts[i]
        .pid
        .is_some_and(|pid| host::is_our_nspawn(pid, name));
    let octet = state.hosts[i].spec.octet;
    let need_running = || {
        if running {
            Ok(())
        } else {
            Err(format!(
                "{name} is down: `kbz lab fault {name} restart` boots it"
            ))
        }
    };
    let new_pid = {
        let c = ctx(&p, &state, &cgroups, &etc_hosts, &pubkey);
        let spec = &state.hosts[i].spec;
        match fault {
            Fault::Crash => {
                need_running()?;
                host::crash(&c, spec)?;
                None
            }
            Fault::Restart => {
                if running {
                    progress(&format!("{name} is running: rebooting it cleanly"));
                    host::stop(&c, spec, state.hosts[i].pid, Duration::from_secs(20));
                }
                let pid = host::start(&c, spec)?;
                net::attach(spec.octet)?;
                Some(pid)
            }
            Fault::Cut | Fault::Restore => {
                need_running()?;
                net::set_link(octet, fault == Fault::Restore)?;
                return Ok(());
            }
            Fault::Freeze | Fault::Thaw => {
                need_running()?;
                return cgroups.set_frozen(name, fault == Fault::Freeze);
            }
        }
    };
    state.hosts[i].pid = new_pid;
    save(&p, &state)?;
    if new_pid.is_some() {
        let h = state.hosts[i].clone();
        wait_ssh(&p, &state, &[&h], progress)?;
    }
    Ok(())
}
