//! Helpers for tests that run against the lab: real Debian hosts under systemd-nspawn. They
//! need root and the packages `.ci/setup` installs; without them they fail saying so, never
//! skip.
#![allow(dead_code)]

pub mod tmux;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The state directory lab tests use, apart from an operator's own lab (whose presence makes
/// `lab up` fail with a message rather than take it over). The image cache is shared.
pub fn state_home() -> PathBuf {
    PathBuf::from("/tmp/kbz-tests/state")
}

pub fn lab_dir() -> PathBuf {
    state_home().join("kbz/lab")
}

/// Fails the test with the exact fix when the lab cannot run here.
pub fn require_lab_prerequisites() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "lab tests need root: run the README's test command as root"
    );
    for (bin, pkg) in [
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("ssh", "openssh-client"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "lab tests need {bin}: apt-get install -y {pkg} (or run .ci/setup)"
        );
    }
}

/// The config directory lab tests use (empty unless a test writes one): an operator's own
/// config, themes or modules never change what a test sees.
pub fn config_home() -> PathBuf {
    PathBuf::from("/tmp/kbz-tests/config")
}

/// Starts kbz with the tests' state dir, stdout and stderr piped.
pub fn kbz_spawn(args: &[&str]) -> std::process::Child {
    kbz_spawn_with(&config_home(), args)
}

/// Starts kbz with the tests' state dir and the given XDG config home.
pub fn kbz_spawn_with(config: &std::path::Path, args: &[&str]) -> std::process::Child {
    use std::process::Stdio;
    Command::new(env!("CARGO_BIN_EXE_kbz"))
        .args(args)
        .env("XDG_STATE_HOME", state_home())
        .env("XDG_CONFIG_HOME", config)
        .env_remove("KBZ_INVENTORY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kbz")
}

/// Runs kbz with the tests' state dir; stdout and stderr captured. A kbz that has not ended
/// in time (3 minutes; 7 for an install or a cleanup, whose modules may legitimately wait on
/// each other on a loaded machine) is killed and fails the test with what it printed (a hang
/// must not stall the suite, and must say where it hung).
pub fn kbz(args: &[&str]) -> Output {
    wait_output(kbz_spawn(args), args)
}

/// Waits for a spawned kbz (3 minutes at most, 7 for an install or a cleanup, then kills it
/// and fails with the end of its output).
pub fn wait_output(mut child: std::process::Child, args: &[&str]) -> Output {
    use std::io::Read;
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        let _ = out.read_to_end(&mut o);
        o
    });
    let err_reader = std::thread::spawn(move || {
        let mut e = Vec::new();
        let _ = err.read_to_end(&mut e);
        e
    });
    let limit = if args.iter().any(|a| *a == "install" || *a == "cleanup") {
        420
    } else {
        180
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(limit);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait kbz") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let tail = |b: Vec<u8>| {
                let text = String::from_utf8_lossy(&b).into_owned();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            panic!(
                "kbz {args:?} did not finish within {limit} s; its last output:\n{}\n{}",
                tail(reader.join().unwrap_or_default()),
                tail(err_reader.join().unwrap_or_default())
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Runs kbz and fails the test with its output unless it succeeded; returns stdout.
pub fn kbz_ok(args: &[&str]) -> String {
    let out = kbz(args);
    assert!(
        out.status.success(),
        "kbz {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(hostname, ip)` of every lab host, from the lab's inventory through `kbz --lab`.
pub fn lab_hosts() -> Vec<(String, String)> {
    let json = kbz_ok(&["--lab", "inventory", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("inventory json");
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["hostname"].as_str().unwrap_or_default().to_string(),
                h["ip_private"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// OpenSSH to a lab host by address, verifying its key strictly against the lab's
/// known_hosts.
pub fn openssh(ip: &str, command: &str, connect_timeout_s: u32) -> Output {
    let dir = lab_dir();
    Command::new("ssh")
        .args(["-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            dir.join("known_hosts").display()
        ))
        .arg("-i")
        .arg(dir.join("id_ed25519"))
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .arg("-o")
        .arg(format!("ConnectTimeout={connect_timeout_s}"))
        .arg(format!("root@{ip}"))
        .arg(command)
        .output()
        .expect("run ssh")
}

pub fn ip_of(hosts: &[(String, String)], name: &str) -> String {
    hosts
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, ip)| ip.clone())
        .unwrap_or_else(|| panic!("no lab host {name}"))
}

/// `kbz lab status --json` as name -> state.
pub fn lab_states() -> Vec<(String, String)> {
    let json = kbz_ok(&["lab", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("status json");
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or_default().to_string(),
                h["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn state_of(name: &str) -> String {
    lab_states()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("{name} not in lab status"))
}

/// The faults the failover ledger of the tests' lab still lists.
pub fn ledger() -> Vec<serde_json::Value> {
    match std::fs::read_to_string(state_home().join("kbz/faults/lab.json")) {
        Ok(t) => serde_json::from_str::<serde_json::Value>(&t)
            .unwrap()
            .as_array()
            .unwrap()
            .clone(),
        Err(_) => Vec::new(),
    }
}

/// A systemd unit of a lab host is active (asked over OpenSSH).
pub fn active(host: &str, unit: &str) -> bool {
    let out = openssh(
        &ip_of(&lab_hosts(), host),
        &format!("systemctl is-active {unit}"),
        5,
    );
    String::from_utf8_lossy(&out.stdout).trim() == "active"
}
