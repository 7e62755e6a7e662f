//! The few system calls and tools the lab needs: running commands with errors that name them,
//! processes by pid, and the cgroups each host lives in.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a command to completion; a failure carries the command line and its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Like [`run`], for clean-up steps whose failure only means "already gone".
pub fn run_quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes an ed25519 key pair at `path` (and `path.pub`) with OpenSSH's ssh-keygen.
pub fn keygen(path: &Path, comment: &str) -> Result<(), String> {
    let p = path.to_string_lossy();
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &p],
    )
    .map(|_| ())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// True when `name` is an executable in PATH.
pub fn have(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Alive and not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The process's command line, arguments separated by spaces.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

pub fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid > 0 {
        // SAFETY: kill has no memory preconditions; a positive pid targets one process.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Polls `done` every 50 ms until it holds or `timeout` passes; true when it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mount points at or under `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found.dedup();
    found
}

/// The cgroup hierarchies a host is placed in. Each host gets `kbz/NAME` in every one: in
/// the v2 (`unified`) and `name=systemd` ones so that hosts never share the cgroups their
/// systemd manages (nspawn `--keep-unit` creates them under the caller's), and in the freezer
/// so that freeze and crash reach every process of the host and nothing else.
#[derive(Debug, Clone)]
pub struct Cgroups {
    roots: Vec<PathBuf>,
    /// Where freezing happens: v1 freezer (`freezer.state`) or v2 (`cgroup.freeze`).
    freezer: Option<(PathBuf, bool)>,
}

impl Cgroups {
    pub fn detect() -> Cgroups {
        let base = Path::new("/sys/fs/cgroup");
        if base.join("cgroup.controllers").exists() {
            // Pure cgroup v2.
            let root = base.join("kbz");
            return Cgroups {
                roots: vec![root.clone()],
                freezer: Some((root, true)),
            };
        }
        let roots: Vec<PathBuf> = ["unified", "systemd", "freezer"]
            .iter()
            .map(|h| base.join(h))
            .filter(|p| p.is_dir())
            .map(|p| p.join("kbz"))
            .collect();
        let freezer = if base.join("freezer").is_dir() {
            Some((base.join("freezer/kbz"), false))
        } else if base.join("unified").is_dir() {
            Some((base.join("unified/kbz"), true))
        } else {
            None
        };
        Cgroups { roots, freezer }
    }

    /// The `cgroup.procs` files a starting host must write its pid into.
    pub fn create(&self, host: &str) -> Result<Vec<PathBuf>, String> {
        let mut procs = Vec::new();
        for root in &self.roots {
            let dir = root.join(host);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create cgroup {}: {e}", dir.display()))?;
            procs.push(dir.join("cgroup.procs"));
        }
        Ok(procs)
    }

    /// Every pid in the host's cgroups (nested ones included).
    pub fn pids(&self, host: &str) -> Vec<u32> {
        let mut pids = Vec::new();
        for root in &self.roots {
            collect_pids(&root.join(host), &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Freezes (or thaws) every process of the host and waits until the kernel says it is done.
    pub fn set_frozen(&self, host: &str, frozen: bool) -> Result<(), String> {
        let Some((root, v2)) = &self.freezer else {
            return Err("this machine has no freezer cgroup".into());
        };
        let dir = root.join(host);
        let (file, value, settled) = match (v2, frozen) {
            (false, true) => ("freezer.state", "FROZEN", "FROZEN"),
            (false, false) => ("freezer.state", "THAWED", "THAWED"),
            (true, true) => ("cgroup.freeze", "1", "frozen 1"),
            (true, false) => ("cgroup.freeze", "0", "frozen 0"),
        };
        std::fs::write(dir.join(file), value)
            .map_err(|e| format!("cannot write {}: {e}", dir.join(file).display()))?;
        let check = || {
            if *v2 {
                std::fs::read_to_string(dir.join("cgroup.events"))
                    .is_ok_and(|s| s.lines().any(|l| l == settled))
            } else {
                std::fs::read_to_string(dir.join(file)).is_ok_and(|s| s.trim() == settled)
            }
        };
        if wait_until(Duration::from_secs(10), check) {
            Ok(())
        } else {
            Err(format!("{host} did not reach {value} within 10 s"))
        }
    }

    pub fn is_frozen(&self, host: &str) -> bool {
        let Some((root, v2)) = &self.freezer else {
            return false;
        };
        let dir = root.join(host);
        if *v2 {
            std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        } else {
            std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
        }
    }

    /// Kills every process of the host at once: freeze so nothing forks while we collect
    /// pids, SIGKILL them all, thaw so the kills are delivered, wait until none is left.
    pub fn kill_all(&self, host: &str) -> Result<(), String> {
        let can_freeze = self.set_frozen(host, true).is_ok();
        for pid in self.pids(host) {
            signal(pid, libc::SIGKILL);
        }
        if can_freeze {
            self.set_frozen(host, false)?;
        }
        if wait_until(Duration::from_secs(10), || self.pids(host).is_empty()) {
            Ok(())
        } else {
            Err(format!(
                "processes of {host} survived SIGKILL: {:?}",
                self.pids(host)
            ))
        }
    }

    /// Removes the host's (empty) cgroup directories, deepest first.
    pub fn remove(&self, host: &str) {
        for root in &self.roots {
            remove_tree(&root.join(host));
        }
    }

    /// Hosts that have a cgroup, whatever state the lab file says.
    pub fn hosts(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .roots
            .iter()
            .filter_map(|r| std::fs::read_dir(r).ok())
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Removes the `kbz` directories themselves once no host is left.
    pub fn remove_roots(&self) {
        for root in &self.roots {
            let _ = std::fs::remove_dir(root);
        }
    }
}

fn collect_pids(dir: &Path, pids: &mut Vec<u32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                collect_pids(&e.path(), pids);
            }
        }
    }
}

/// cgroup directories are removed with rmdir, children first (they hold no files to delete).
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
