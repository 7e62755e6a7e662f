//! The SSH engine against the lab's real sshd: fan-out exec, strict host keys, a cut host,
//! 50 MB of output, cancel that leaves no remote process (root and non-root), logs that
//! survive a host restart. Needs root (run as the README's test command does).

mod common;
use common::*;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn interrupt(child: &Child) {
    // SAFETY: signals a child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

fn exec_json(args: &[&str]) -> (bool, Vec<serde_json::Value>) {
    let out = kbz(args);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kbz {args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

/// Runs `pgrep -f PATTERN` on a host as root through OpenSSH.
fn remote_running(ip: &str, pattern: &str) -> bool {
    let out = openssh(
        ip,
        &format!("pgrep -f '{pattern}' >/dev/null && echo yes || echo no"),
        5,
    );
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn check_fan_out(hosts: &[(String, String)]) {
    let out = kbz_ok(&["--lab", "exec", "all", "--", "hostname"]);
    for (name, _) in hosts {
        assert!(
            out.lines()
                .any(|l| l.starts_with(name.as_str())
                    && l.trim_end().ends_with(&format!("| {name}"))),
            "{name} did not print its own name:\n{out}"
        );
    }
    let (ok, list) = exec_json(&[
        "--lab",
        "exec",
        "redis",
        "--json",
        "--",
        "hostname; echo e >&2; exit 0",
    ]);
    assert!(ok);
    assert_eq!(list.len(), 3);
    for r in &list {
        assert_eq!(
            r["stdout"].as_str().unwrap().trim(),
            r["host"].as_str().unwrap()
        );
        assert_eq!(r["stderr"], "e\n");
        assert_eq!(r["exit"], 0);
    }
    let (ok, list) = exec_json(&["--lab", "exec", "redis-01", "--json", "--", "exit 7"]);
    assert!(!ok, "a failing host makes kbz exec exit 1");
    assert_eq!(list[0]["exit"], 7);
}

fn check_host_keys() {
    let kh = lab_dir().join("known_hosts");
    let original = std::fs::read_to_string(&kh).unwrap();
    let entry = |name: &str| {
        original
            .lines()
            .find(|l| l.starts_with(&format!("{name},")))
            .unwrap()
            .to_string()
    };
    let key_of = |name: &str| entry(name).split_once(' ').unwrap().1.to_string();
    let others: String = original
        .lines()
        .filter(|l| !l.starts_with("redis-01,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let redis01_names = entry("redis-01").split_once(' ').unwrap().0.to_string();

    // Changed: redis-01 recorded with redis-02's key.
    std::fs::write(
        &kh,
        format!("{others}{redis01_names} {}\n", key_of("redis-02")),
    )
    .unwrap();
    let (ok, list) = exec_json(&["--lab", "exec", "redis-01", "--json", "--", "true"]);
    let err = list[0]["error"].as_str().unwrap_or_default().to_string();
    assert!(!ok && err.contains("HOST KEY CHANGED"), "{err}");
    assert_eq!(
        err.matches("SHA256:").count(),
        2,
        "both fingerprints shown: {err}"
    );
    // Even --accept-new never accepts a changed key.
    let (ok, _) = exec_json(&[
        "--lab",
        "--accept-new",
        "exec",
        "redis-01",
        "--json",
        "--",
        "true",
    ]);
    assert!(!ok, "--accept-new must not accept a changed key");

    // Unknown: refused, then accepted and recorded with --accept-new.
    std::fs::write(&kh, &others).unwrap();
    let (ok, list) = exec_json(&["--lab", "exec", "redis-01", "--json", "--", "true"]);
    assert!(
        !ok && list[0]["error"]
            .as_str()
            .unwrap()
            .contains("host key unknown"),
        "{list:?}"
    );
    let (ok, _) = exec_json(&[
        "--lab",
        "--accept-new",
        "exec",
        "redis-01",
        "--json",
        "--",
        "true",
    ]);
    assert!(ok, "--accept-new accepts an unknown host");
    let recorded = std::fs::read_to_string(&kh).unwrap();
    assert!(
        recorded.contains(&key_of("redis-01")),
        "the new key was written to known_hosts"
    );
    let (ok, _) = exec_json(&["--lab", "exec", "redis-01", "--json", "--", "true"]);
    assert!(ok, "and is trusted afterwards");

    // Revoked: refused even though the plain entry is there.
    std::fs::write(
        &kh,
        format!("{original}@revoked * {}\n", key_of("redis-01")),
    )
    .unwrap();
    let (ok, list) = exec_json(&["--lab", "exec", "redis-01", "--json", "--", "true"]);
    assert!(
        !ok && list[0]["error"].as_str().unwrap().contains("REVOKED"),
        "{list:?}"
    );
    std::fs::write(&kh, original).unwrap();
}

fn check_cut_host() {
    kbz_ok(&["lab", "fault", "queue-01", "cut"]);
    let start = Instant::now();
    let (ok, list) = exec_json(&[
        "--lab",
        "--connect-timeout",
        "4",
        "exec",
        "rabbitmq",
        "--json",
        "--",
        "true",
    ]);
    let wall = start.elapsed();
    kbz_ok(&["lab", "fault", "queue-01", "restore"]);
    assert!(!ok);
    for r in &list {
        if r["host"] == "queue-01" {
            let err = r["error"].as_str().unwrap_or_default();
            assert!(
                err.contains("timeout"),
                "queue-01 reported unreachable: {err}"
            );
        } else {
            assert_eq!(r["exit"], 0, "{r}");
            assert!(
                r["duration_ms"].as_f64().unwrap() < 2000.0,
                "others finish in normal time: {r}"
            );
        }
    }
    assert!(
        wall < Duration::from_secs(8),
        "the cut host costs one connect timeout, no more: {wall:?}"
    );
}

fn check_big_output() {
    let cmd = "head -c 37500000 /dev/urandom | base64 -w 76 | tee >(sha256sum | cut -d' ' -f1 >&2)";
    let (ok, list) = exec_json(&["--lab", "exec", "db-slave-01", "--json", "--", cmd]);
    assert!(ok);
    let stdout = list[0]["stdout"].as_str().unwrap();
    assert!(stdout.len() > 50_000_000, "{}", stdout.len());
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdout.as_bytes())
        .unwrap();
    let sum = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    let local = sum.split_whitespace().next().unwrap();
    assert_eq!(
        local,
        list[0]["stderr"].as_str().unwrap().trim(),
        "50 MB arrived intact"
    );
}

fn check_cancel(extra: &[&str], host: &str, ip: &str) {
    for (cmd, pattern) in [
        ("sleep 1000", "^sleep 1000$"),
        ("journalctl -f", "^journalctl -f$"),
    ] {
        let mut args = vec!["--lab"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["exec", host, "--", cmd]);
        let mut child = kbz_spawn(&args);
        wait_for(
            &format!("{cmd} to run on {host}"),
            Duration::from_secs(15),
            || remote_running(ip, pattern),
        );
        interrupt(&child);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "interrupted kbz exits 130");
        wait_for(
            &format!("{cmd} gone from {host}"),
            Duration::from_secs(5),
            || !remote_running(ip, pattern),
        );
    }
}

fn check_non_root_and_sudo(ip: &str) {
    let setup = "id ops >/dev/null 2>&1 || useradd -m -s /bin/bash -G systemd-journal ops; \
                 install -d -o ops -m 700 /home/ops/.ssh; \
                 install -o ops -m 600 /root/.ssh/authorized_keys /home/ops/.ssh/authorized_keys; \
                 rm -f /etc/sudoers.d/ops";
    assert!(openssh(ip, setup, 5).status.success());
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("servers.tsv");
    let tsv = std::fs::read_to_string(lab_dir().join("servers.tsv")).unwrap();
    let tsv: String = tsv
        .lines()
        .map(|l| {
            if l.contains("\tredis-02\t") {
                l.replace("\troot\t", "\tops\t")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&inv, tsv).unwrap();
    let inv = inv.to_string_lossy().to_string();
    let (_, list) = exec_json(&[
        "--lab", "-i", &inv, "exec", "redis-02", "--json", "--", "id -un",
    ]);
    assert_eq!(list[0]["stdout"], "ops\n");
    check_cancel(&["-i", &inv], "redis-02", ip);
    // sudo -n without a sudoers entry: a clear refusal, not a hang on a password prompt.
    let (ok, list) = exec_json(&[
        "--lab", "-i", &inv, "exec", "redis-02", "--sudo", "--json", "--", "id -u",
    ]);
    assert!(!ok);
    assert!(
        list[0]["stderr"]
            .as_str()
            .unwrap()
            .contains("password is required"),
        "{list:?}"
    );
    assert!(openssh(ip, "echo 'ops ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ops && chmod 440 /etc/sudoers.d/ops", 5).status.success());
    let (ok, list) = exec_json(&[
        "--lab", "-i", &inv, "exec", "redis-02", "--sudo", "--json", "--", "id -u",
    ]);
    assert!(ok, "{list:?}");
    assert_eq!(list[0]["stdout"], "0\n");
}

/// Collects a child's output as it comes, so a test can wait for a line.
fn tail_output(
    child: &mut Child,
) -> (
    std::sync::Arc<std::sync::Mutex<String>>,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    let pipe = |mut r: Box<dyn Read + Send>| {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let b = buf.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        buf
    };
    (
        pipe(Box::new(child.stdout.take().unwrap())),
        pipe(Box::new(child.stderr.take().unwrap())),
    )
}

fn check_logs_follow_restart(ip: &str) {
    let mut child = kbz_spawn(&["--lab", "logs", "queue-02", "--follow", "-n", "1"]);
    let (out, err) = tail_output(&mut child);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        openssh(ip, "logger -t kbz-test before-restart", 5)
            .status
            .success()
    );
    wait_for(
        "the line before the restart",
        Duration::from_secs(10),
        || out.lock().unwrap().contains(": before-restart"),
    );
    kbz_ok(&["lab", "fault", "queue-02", "restart"]);
    assert!(
        openssh(ip, "logger -t kbz-test after-restart", 5)
            .status
            .success()
    );
    wait_for(
        "the stream to resume after the restart",
        Duration::from_secs(30),
        || out.lock().unwrap().contains(": after-restart"),
    );
    interrupt(&child);
    let _ = child.wait();
    let out = out.lock().unwrap().clone();
    let err = err.lock().unwrap().clone();
    assert!(
        err.contains("reconnecting") && err.contains("reconnected"),
        "the loss and the resume are said: {err}"
    );
    assert_eq!(
        out.matches(": before-restart").count(),
        1,
        "nothing repeated after the reconnect:\n{out}"
    );
}

fn check_proxy_jump_and_tunnel(hosts: &[(String, String)]) {
    let install = ip_of(hosts, "install-01");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssh_config");
    std::fs::write(
        &cfg,
        format!("Host redis-03\n  ProxyJump install-01\n\nHost install-01\n  HostName {install}\n"),
    )
    .unwrap();
    let cfg = cfg.to_string_lossy().to_string();
    let (ok, list) = exec_json(&[
        "--lab",
        "--ssh-config",
        &cfg,
        "exec",
        "redis-03",
        "--json",
        "--",
        "echo $SSH_CONNECTION",
    ]);
    assert!(ok, "{list:?}");
    let seen_from = list[0]["stdout"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        seen_from, install,
        "redis-03 was reached through install-01"
    );

    let mut child = kbz_spawn(&["--lab", "tunnel", "db-master-01", "22"]);
    let mut first = String::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.as_mut().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .unwrap();
    }
    let local = first.split_whitespace().next().unwrap().to_string();
    let mut sock = std::net::TcpStream::connect(&local).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut banner = [0u8; 8];
    sock.read_exact(&mut banner).unwrap();
    assert_eq!(
        &banner, b"SSH-2.0-",
        "db-master-01's sshd answered through the tunnel"
    );
    interrupt(&child);
    let _ = child.wait();
}

/// A script sent on stdin with awkward arguments, through the library's own pool, and two
/// channels at once on one connection.
fn check_script_through_the_engine() {
    use keybuzz_console::inventory::{Fleet, Inventory, RuleSet};
    use keybuzz_console::ssh::{ExecEvent, ExecSpec, Exit, Payload, Pool, SshOptions};
    let inv = Inventory::load(&lab_dir().join("servers.tsv")).unwrap();
    let fleet = Fleet::new(&inv, None, &RuleSet::builtin()).unwrap();
    let opts = SshOptions::user_defaults().with_lab(
        &lab_dir().join("id_ed25519"),
        &lab_dir().join("known_hosts"),
    );
    let pool = Pool::new(opts).unwrap();
    let target = pool.target(fleet.host("maria-02").unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let script = ExecSpec {
            payload: Payload::Script {
                body: "set -eu\nprintf '%s|' \"$@\"\necho \"$(hostname)\"\n".into(),
                args: vec!["two words".into(), "$(id)".into(), "it's".into()],
            },
            sudo: false,
        };
        let a = pool.exec(&target, &script).await.unwrap();
        let b = pool
            .exec(&target, &ExecSpec::command("sleep 0.3; echo second"))
            .await
            .unwrap();
        let collect = |mut e: keybuzz_console::ssh::Exec| async move {
            let mut out = Vec::new();
            loop {
                match e.next().await {
                    Some(ExecEvent::Data(_, d)) => out.extend_from_slice(&d),
                    Some(ExecEvent::Exit { exit, .. }) => {
                        return (String::from_utf8(out).unwrap(), exit);
                    }
                    None => panic!("no exit"),
                }
            }
        };
        let (out_a, exit_a) = collect(a).await;
        assert_eq!(
            (out_a.as_str(), &exit_a),
            ("two words|$(id)|it's|maria-02\n", &Exit::Code(0))
        );
        let (out_b, _) = collect(b).await;
        assert_eq!(out_b, "second\n");
        assert!(matches!(
            pool.state("maria-02"),
            keybuzz_console::ssh::ConnState::Up { .. }
        ));
    });
}

/// A dead host is backed off: the next attempt within the backoff fails at once with the same
/// reason instead of waiting for another connect timeout; once it is back, it reconnects.
fn check_dead_host_backoff() {
    use keybuzz_console::inventory::{Fleet, Inventory, RuleSet};
    use keybuzz_console::ssh::{ConnState, ExecSpec, Pool, SshOptions};
    let inv = Inventory::load(&lab_dir().join("servers.tsv")).unwrap();
    let fleet = Fleet::new(&inv, None, &RuleSet::builtin()).unwrap();
    let mut opts = SshOptions::user_defaults().with_lab(
        &lab_dir().join("id_ed25519"),
        &lab_dir().join("known_hosts"),
    );
    opts.connect_timeout = Duration::from_secs(2);
    let pool = Pool::new(opts).unwrap();
    let target = pool.target(fleet.host("maria-03").unwrap());
    kbz_ok(&["lab", "fault", "maria-03", "cut"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let start = Instant::now();
        assert!(
            pool.exec(&target, &ExecSpec::command("true"))
                .await
                .is_err()
        );
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "the first attempt waits for the timeout"
        );
        let again = Instant::now();
        let err = pool.exec(&target, &ExecSpec::command("true")).await.err();
        assert!(
            again.elapsed() < Duration::from_millis(200),
            "backed off: {:?}",
            again.elapsed()
        );
        assert!(matches!(err, Some(ConnState::Down { .. })), "{err:?}");
        kbz_ok(&["lab", "fault", "maria-03", "restore"]);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(
            pool.exec(&target, &ExecSpec::command("true")).await.is_ok(),
            "reconnects after the backoff"
        );
    });
}

#[test]
fn ssh_engine_against_the_lab() {
    require_lab_prerequisites();
    kbz_ok(&["lab", "up"]);
    let hosts = lab_hosts();
    check_fan_out(&hosts);
    check_host_keys();
    check_cut_host();
    check_big_output();
    check_cancel(&[], "redis-01", &ip_of(&hosts, "redis-01"));
    check_non_root_and_sudo(&ip_of(&hosts, "redis-02"));
    check_logs_follow_restart(&ip_of(&hosts, "queue-02"));
    check_proxy_jump_and_tunnel(&hosts);
    check_script_through_the_engine();
    check_dead_host_backoff();
    kbz_ok(&["lab", "down"]);
}
