//! The lab's own record of itself (`lab.json`) and where its files live.

use crate::paths::Paths;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::host;
use super::profile::HostSpec;
use super::sys::Cgroups;

/// Where a lab keeps its files (all under kbz's state dir, nothing in the repository).
#[derive(Debug, Clone)]
pub struct LabPaths {
    pub dir: PathBuf,
    pub cache: PathBuf,
    pub state_file: PathBuf,
    pub hosts: PathBuf,
    /// The private key kbz and OpenSSH log in with; `.pub` beside it.
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub servers_tsv: PathBuf,
    /// `ssh -F <this> db-master-01` logs into a lab host with strict host-key checking.
    pub ssh_config: PathBuf,
}

impl LabPaths {
    pub fn new(paths: &Paths) -> LabPaths {
        let dir = paths.state.join("lab");
        LabPaths {
            cache: paths.cache.join("lab"),
            state_file: dir.join("lab.json"),
            hosts: dir.join("hosts"),
            key: dir.join("id_ed25519"),
            known_hosts: dir.join("known_hosts"),
            servers_tsv: dir.join("servers.tsv"),
            ssh_config: dir.join("ssh_config"),
            dir,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LabState {
    pub net: Ipv4Addr,
    pub image: PathBuf,
    pub hosts: Vec<LabHost>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LabHost {
    #[serde(flatten)]
    pub spec: HostSpec,
    /// The host's systemd-nspawn, while it runs.
    pub pid: Option<u32>,
}

/// An exclusive lock on the lab for the duration of one command: two `kbz lab` at once would
/// fight over the same hosts.
pub(super) struct Lock {
    _file: std::fs::File,
}

impl Lock {
    pub fn take(dir: &Path) -> Result<Lock, String> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let f = std::fs::File::create(dir.join("lock")).map_err(|e| format!("lab lock: {e}"))?;
        // SAFETY: flock on a file descriptor we own; the lock lives as long as the File.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            Ok(Lock { _file: f })
        } else {
            Err("cannot lock the lab".into())
        }
    }
}

pub(super) fn load(p: &LabPaths) -> Result<Option<LabState>, String> {
    match std::fs::read_to_string(&p.state_file) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            format!(
                "{} is damaged ({e}); `kbz lab down` removes the lab",
                p.state_file.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", p.state_file.display())),
    }
}

pub(super) fn save(p: &LabPaths, state: &LabState) -> Result<(), String> {
    let tmp = p.state_file.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &p.state_file)
        .map_err(|e| format!("cannot write {}: {e}", p.state_file.display()))
}

pub(super) fn ctx<'a>(
    p: &'a LabPaths,
    state: &'a LabState,
    cgroups: &'a Cgroups,
    etc_hosts: &'a str,
    pubkey: &'a Path,
) -> host::Ctx<'a> {
    host::Ctx {
        image: &state.image,
        hosts_dir: &p.hosts,
        lab_pubkey: pubkey,
        etc_hosts,
        net: state.net,
        cgroups,
    }
}

pub(super) fn ip_of(net: Ipv4Addr, octet: u8) -> Ipv4Addr {
    let o = net.octets();
    Ipv4Addr::new(o[0], o[1], o[2], octet)
}
