//! `kbz lab`: a fleet of real Debian hosts (systemd, OpenSSH, the fleet's real services) on
//! this machine, each a systemd-nspawn container with its own hostname, address, host key,
//! persistent disk and process tree. It is the demo fleet and what the tests run against.

mod host;
mod image;
mod net;
mod ops;
pub mod profile;
mod state;
mod sys;

pub use image::PACKAGES;
pub use ops::{Fault, HostState, HostStatus, fault, status};
pub use profile::{HostSpec, Profile};
pub use state::LabPaths;

use state::{LabHost, LabState, Lock, ctx, ip_of, load, save};

use crate::paths::Paths;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sys::Cgroups;

#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub started: Vec<String>,
    pub already_running: Vec<String>,
    /// From the first boot to the last host answering SSH.
    pub ready_after: Duration,
    pub servers_tsv: PathBuf,
}

/// Refuses early, with the exact fix, when the lab cannot work on this machine.
pub fn preflight() -> Result<(), String> {
    if !sys::is_root() {
        return Err(
            "the lab needs root (it creates a bridge, mounts and containers): run kbz lab as root"
                .into(),
        );
    }
    let needed = [
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("ssh-keygen", "openssh-client"),
        ("ip", "iproute2"),
    ];
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(bin, _)| !sys::have(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the lab needs packages that are missing: apt-get install -y {}",
            missing.join(" ")
        ))
    }
}

/// Boots the lab (building the image first if needed); a running lab only gets what it misses.
pub fn up(
    paths: &Paths,
    profile: Profile,
    apps: usize,
    progress: &dyn Fn(&str),
) -> Result<UpReport, String> {
    preflight()?;
    let p = LabPaths::new(paths);
    let _lock = Lock::take(&p.dir)?;
    let cgroups = Cgroups::detect();
    let mut state = match load(&p)? {
        Some(s) if s.image.is_dir() => s,
        Some(s) => {
            return Err(format!(
                "the lab's image {} is gone; `kbz lab down` then `kbz lab up` starts afresh",
                s.image.display()
            ));
        }
        None => {
            if let Some(owner) = other_live_lab(&p) {
                return Err(format!(
                    "a lab from {} is running (one lab per machine): stop it first with \
                     `XDG_STATE_HOME={} kbz lab down`",
                    owner.display(),
                    owner
                        .parent()
                        .and_then(Path::parent)
                        .unwrap_or(&owner)
                        .display()
                ));
            }
            // Leftovers of a lab whose state file is gone would hold the bridge and addresses.
            remove_all(&p, &cgroups, None, progress);
            let image = image::ensure(&p.cache, progress)?;
            let net = net::choose_subnet()?;
            LabState {
                net,
                image,
                hosts: Vec::new(),
            }
        }
    };
    for spec in profile::hosts(profile, apps)? {
        if !state.hosts.iter().any(|h| h.spec.name == spec.name) {
            state.hosts.push(LabHost { spec, pid: None });
        }
    }
    save(&p, &state)?;
    std::fs::create_dir_all(&p.hosts).map_err(|e| format!("{}: {e}", p.hosts.display()))?;
    if !p.key.is_file() {
        sys::keygen(&p.key, "kbz-lab")?;
    }
    raise_inotify_limits(progress);
    net::bridge_up(state.net, &p.dir)?;

    let etc_hosts = etc_hosts(&state);
    let pubkey = p.key.with_extension("pub");
    let c = ctx(&p, &state, &cgroups, &etc_hosts, &pubkey);
    write_client_files(&p, &state, &c)?;

    let start = Instant::now();
    let mut started = Vec::new();
    let mut already = Vec::new();
    let mut pids = Vec::new();
    for h in &state.hosts {
        if h.pid
            .is_some_and(|pid| host::is_our_nspawn(pid, &h.spec.name))
        {
            // `up` means up: a host left frozen (a test that stopped before its thaw) is
            // thawed, or everything after would find it silent.
            if cgroups.is_frozen(&h.spec.name) {
                cgroups.set_frozen(&h.spec.name, false)?;
                progress(&format!("{}: was frozen, thawed", h.spec.name));
            }
            already.push(h.spec.name.clone());
            pids.push(h.pid);
            continue;
        }
        let pid = host::start(&c, &h.spec)?;
        started.push(h.spec.name.clone());
        pids.push(Some(pid));
    }
    for (h, pid) in state.hosts.iter_mut().zip(pids) {
        h.pid = pid;
    }
    save(&p, &state)?;
    // In a boot storm nspawn makes the interfaces slowly: plug them in as they appear.
    let attached: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = state
            .hosts
            .iter()
            .filter(|h| started.contains(&h.spec.name))
            .map(|h| s.spawn(move || net::attach(h.spec.octet)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("an attach thread panicked".into()))
            })
            .collect()
    });
    attached.into_iter().collect::<Result<Vec<()>, String>>()?;
    if !started.is_empty() {
        progress(&format!(
            "booting {} host(s) on {} ({}/24)...",
            started.len(),
            net::BRIDGE,
            state.net
        ));
    }
    let waiting: Vec<&LabHost> = state
        .hosts
        .iter()
        .filter(|h| started.contains(&h.spec.name))
        .collect();
    wait_ssh(&p, &state, &waiting, progress)?;
    let ready_after = start.elapsed();
    Ok(UpReport {
        started,
        already_running: already,
        ready_after,
        servers_tsv: p.servers_tsv.clone(),
    })
}

/// Waits until every host answers SSH; a host whose nspawn died is reported with the end of
/// its console log.
fn wait_ssh(
    p: &LabPaths,
    state: &LabState,
    hosts: &[&LabHost],
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    let deadline = Duration::from_secs(60 + hosts.len() as u64);
    let start = Instant::now();
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| {
                s.spawn(move || {
                    let ip = ip_of(state.net, h.spec.octet);
                    loop {
                        if host::ssh_banner(ip, Duration::from_millis(500)) {
                            return Ok(());
                        }
                        if h.pid.is_some_and(|pid| !sys::pid_alive(pid)) {
                            let log = p.hosts.join(&h.spec.name).join("console.log");
                            let tail = std::fs::read_to_string(&log).unwrap_or_default();
                            let tail: Vec<&str> = tail.lines().rev().take(8).collect();
                            return Err(format!(
                                "{} stopped while booting; end of {}:\n  {}",
                                h.spec.name,
                                log.display(),
                                tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
                            ));
                        }
                        if start.elapsed() > deadline {
                            return Err(format!(
                                "{} ({ip}) did not answer SSH within {} s",
                                h.spec.name,
                                deadline.as_secs()
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a wait thread panicked".into()))
            })
            .collect()
    });
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if errors.is_empty() {
        if !hosts.is_empty() {
            progress(&format!(
                "{} host(s) answer SSH after {:.1} s",
                hosts.len(),
                start.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// The hosts file every lab host starts with: all lab hosts by name.
fn etc_hosts(state: &LabState) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n");
    for h in &state.hosts {
        s.push_str(&format!(
            "{}\t{}\n",
            ip_of(state.net, h.spec.octet),
            h.spec.name
        ));
    }
    s
}

/// servers.tsv, known_hosts and ssh_config: what kbz and OpenSSH need to use the lab.
fn write_client_files(p: &LabPaths, state: &LabState, c: &host::Ctx) -> Result<(), String> {
    let specs: Vec<HostSpec> = state.hosts.iter().map(|h| h.spec.clone()).collect();
    let mut known = String::new();
    let mut config = String::from("# kbz lab: ssh -F this-file HOST\n");
    for h in &specs {
        let ip = ip_of(state.net, h.octet);
        known.push_str(&format!(
            "{},{} {}\n",
            h.name,
            ip,
            host::host_pubkey(c, &h.name)?
        ));
        config.push_str(&format!("Host {}\n  HostName {ip}\n", h.name));
    }
    config.push_str(&format!(
        "Host *\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n",
        p.key.display(),
        p.known_hosts.display()
    ));
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(&p.known_hosts, &known)?;
    write(&p.ssh_config, &config)?;
    // What the inventory has no column for: the load balancers' floating address (an octet
    // the lab never gives a host).
    write(
        &p.servers_tsv.with_file_name("kbz.toml"),
        &format!(
            "# Written by kbz lab: this fleet's facts for the module scripts.\n[vars]\nhaproxy_vip = \"{}/24\"\n",
            ip_of(state.net, 10)
        ),
    )?;
    write(&p.servers_tsv, &profile::servers_tsv(&specs, state.net))
}

/// systemd in every host takes inotify instances; the default 128 stops the 33rd host.
fn raise_inotify_limits(progress: &dyn Fn(&str)) {
    for (file, want) in [
        ("max_user_instances", 8192u64),
        ("max_user_watches", 1_048_576),
    ] {
        let path = format!("/proc/sys/fs/inotify/{file}");
        let have: u64 = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if have < want && std::fs::write(&path, want.to_string()).is_ok() {
            progress(&format!(
                "raised fs.inotify.{file} from {have} to {want} (many systemd hosts need it)"
            ));
        }
    }
}

/// Everything the lab made, gone: hosts stopped, mounts, cgroups, interfaces and files
/// removed. Works on a half-dead lab and with no state file at all.
pub fn down(paths: &Paths, progress: &dyn Fn(&str)) -> Result<DownReport, String> {
    preflight()?;
    let p = LabPaths::new(paths);
    if !p.dir.exists() && net::lab_links().is_empty() && Cgroups::detect().hosts().is_empty() {
        return Ok(DownReport {
            stopped: 0,
            leftovers: Vec::new(),
        });
    }
    let _lock = Lock::take(&p.dir)?;
    let cgroups = Cgroups::detect();
    let state = load(&p).unwrap_or(None);
    if state.is_none() && other_live_lab(&p).is_some() {
        // Not ours: only our own (empty) directory goes.
        let _ = std::fs::remove_dir_all(&p.dir);
        return Ok(DownReport {
            stopped: 0,
            leftovers: Vec::new(),
        });
    }
    let stopped = remove_all(&p, &cgroups, state.as_ref(), progress);
    let leftovers = leftovers(&p, &cgroups);
    if leftovers.is_empty() {
        std::fs::remove_dir_all(&p.dir)
            .map_err(|e| format!("cannot remove {}: {e}", p.dir.display()))?;
    }
    Ok(DownReport { stopped, leftovers })
}

#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub stopped: usize,
    /// What could not be removed (empty when the lab is entirely gone).
    pub leftovers: Vec<String>,
}

/// The state directory of another lab that is running on this machine, if one is.
fn other_live_lab(p: &LabPaths) -> Option<PathBuf> {
    net::bridge_owner().filter(|owner| *owner != p.dir && owner.join("lab.json").is_file())
}

/// Stops every host the state or the cgroups know, then removes mounts, cgroups and links.
fn remove_all(
    p: &LabPaths,
    cgroups: &Cgroups,
    state: Option<&LabState>,
    progress: &dyn Fn(&str),
) -> usize {
    let empty = String::new();
    let pubkey = p.key.with_extension("pub");
    let mut stopped = 0;
    if let Some(state) = state {
        let c = ctx(p, state, cgroups, &empty, &pubkey);
        let running = state
            .hosts
            .iter()
            .filter(|h| {
                h.pid
                    .is_some_and(|pid| host::is_our_nspawn(pid, &h.spec.name))
            })
            .count();
        if running > 0 {
            progress(&format!("removing {running} host(s)..."));
        }
        std::thread::scope(|s| {
            for h in &state.hosts {
                let c = &c;
                // Its disk is deleted next: a clean shutdown would only cost time.
                s.spawn(move || {
                    let _ = host::crash(c, &h.spec);
                });
            }
        });
        stopped = running;
    }
    // Hosts without a state entry (a state file lost mid-way) still have cgroups.
    for name in cgroups.hosts() {
        if !cgroups.pids(&name).is_empty() {
            stopped += 1;
        }
        let _ = cgroups.kill_all(&name);
        cgroups.remove(&name);
    }
    for m in sys::mounts_under(&p.dir) {
        let m = m.to_string_lossy();
        if !sys::run_quiet("umount", &[&m]) {
            sys::run_quiet("umount", &["-l", &m]);
        }
    }
    for link in net::lab_links() {
        net::delete_link(&link);
    }
    cgroups.remove_roots();
    stopped
}

/// Anything of the lab still present: processes, interfaces, mounts.
fn leftovers(p: &LabPaths, cgroups: &Cgroups) -> Vec<String> {
    let mut left = Vec::new();
    for name in cgroups.hosts() {
        left.push(format!(
            "cgroup of {name} with pids {:?}",
            cgroups.pids(&name)
        ));
    }
    left.extend(
        net::lab_links()
            .into_iter()
            .map(|l| format!("interface {l}")),
    );
    left.extend(
        sys::mounts_under(&p.dir)
            .into_iter()
            .map(|m| format!("mount {}", m.display())),
    );
    left
}

/// The running lab's inventory, for `kbz --lab`.
pub fn inventory(paths: &Paths) -> Result<PathBuf, String> {
    let p = LabPaths::new(paths);
    if p.servers_tsv.is_file() {
        Ok(p.servers_tsv)
    } else {
        Err("--lab: no lab is running (no lab inventory); start one with `kbz lab up`".into())
    }
}
