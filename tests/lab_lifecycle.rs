//! The lab's whole life against real hosts: up, strict OpenSSH to every host, faults from
//! outside, repair of a half-dead lab, down leaving nothing. Needs root (run as the README's
//! test command does).

mod common;
use common::*;
use std::process::Command;

/// Processes still running (zombies are dead: init reaps them) whose command is nspawn.
fn live_nspawns() -> usize {
    let out = Command::new("ps")
        .args(["-eo", "stat=,comm="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("systemd-nspawn") && !l.trim_start().starts_with('Z'))
        .count()
}

fn lab_interfaces() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kbz"))
        .collect()
}

fn lab_mounts() -> Vec<String> {
    let lab = lab_dir();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| std::path::Path::new(m).starts_with(&lab))
        .map(String::from)
        .collect()
}

#[test]
fn lab_lifecycle() {
    require_lab_prerequisites();
    let up = kbz_ok(&["lab", "up"]);
    assert!(
        up.contains("answering SSH") || up.contains("already running"),
        "{up}"
    );

    // Every host answers strict OpenSSH with its own name and address.
    let hosts = lab_hosts();
    assert_eq!(hosts.len(), 15, "core profile: {hosts:?}");
    for (name, ip) in &hosts {
        let out = openssh(ip, "hostname; ip -4 -o addr show scope global", 5);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().next(), Some(name.as_str()));
        assert!(stdout.contains(&format!("{ip}/24")), "{name}: {stdout}");
    }
    // A second `up` boots nothing.
    let again = kbz_ok(&["lab", "up"]);
    assert!(again.contains("all 15 hosts already running"), "{again}");

    // crash + restart: the host's disk survives, like a rebooted server.
    let redis = ip_of(&hosts, "redis-01");
    assert!(
        openssh(&redis, "echo kept > /root/marker && sync", 5)
            .status
            .success()
    );
    kbz_ok(&["lab", "fault", "redis-01", "crash"]);
    assert_eq!(state_of("redis-01"), "down");
    assert!(!openssh(&redis, "true", 2).status.success());
    kbz_ok(&["lab", "fault", "redis-01", "restart"]);
    let out = openssh(&redis, "cat /root/marker", 5);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kept");

    // cut / restore
    let queue = ip_of(&hosts, "queue-01");
    kbz_ok(&["lab", "fault", "queue-01", "cut"]);
    assert_eq!(state_of("queue-01"), "cut");
    assert!(
        !openssh(&queue, "true", 2).status.success(),
        "a cut host is unreachable"
    );
    kbz_ok(&["lab", "fault", "queue-01", "restore"]);
    assert!(
        openssh(&queue, "true", 5).status.success(),
        "a restored host answers"
    );

    // freeze / thaw
    let maria = ip_of(&hosts, "maria-01");
    kbz_ok(&["lab", "fault", "maria-01", "freeze"]);
    assert_eq!(state_of("maria-01"), "frozen");
    assert!(
        !openssh(&maria, "true", 2).status.success(),
        "a frozen host does not answer"
    );
    kbz_ok(&["lab", "fault", "maria-01", "thaw"]);
    assert!(
        openssh(&maria, "true", 5).status.success(),
        "a thawed host answers"
    );

    // Half-dead lab: haproxy-01's nspawn killed behind kbz's back (its container lives on as
    // orphans). `up` must notice, clean it and boot it again.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab_dir().join("lab.json")).unwrap())
            .unwrap();
    let pid = state["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "haproxy-01")
        .and_then(|h| h["pid"].as_u64())
        .expect("haproxy-01 pid");
    // SAFETY: kill of a pid the lab started and recorded.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let repaired = kbz_ok(&["lab", "up"]);
    assert!(
        repaired.contains("1 host(s) started, 14 already running"),
        "{repaired}"
    );
    assert!(
        openssh(&ip_of(&hosts, "haproxy-01"), "true", 5)
            .status
            .success()
    );

    // A lost state file does not stop `down` from removing everything.
    std::fs::remove_file(lab_dir().join("lab.json")).unwrap();
    let down = kbz_ok(&["lab", "down"]);
    assert!(down.contains("nothing"), "{down}");
    assert_eq!(live_nspawns(), 0, "no nspawn process left");
    assert!(
        lab_interfaces().is_empty(),
        "interfaces left: {:?}",
        lab_interfaces()
    );
    assert!(lab_mounts().is_empty(), "mounts left: {:?}", lab_mounts());
    assert!(!lab_dir().exists(), "lab dir left");
    for h in ["unified", "systemd", "freezer"] {
        assert!(
            !std::path::Path::new(&format!("/sys/fs/cgroup/{h}/kbz")).exists(),
            "cgroup {h}/kbz left"
        );
    }
}
