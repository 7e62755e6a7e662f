//! `kbz failover` against the lab's real clusters (after the modules installed them): Redis
//! and PostgreSQL fail over under each fault and are measured; a partition of the Redis
//! master really produces a split brain, which is counted; Ctrl-C and a killed kbz both leave
//! the fault healed; `--force` past a preflight that says no shows that no failover happens.
//! Needs root (the lab).

mod common;
use common::*;
use serde_json::Value;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn reports() -> PathBuf {
    state_home().join("failover-test-reports")
}

/// Runs one failover test; its report (the JSON's first run), the Markdown beside it checked.
fn failover(name: &str, args: &[&str]) -> (Value, String) {
    let md = reports().join(format!("{name}.md"));
    let md_s = md.display().to_string();
    let mut all = vec!["--lab", "failover"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--yes", "--report", &md_s]);
    let out = kbz(&all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(md.with_extension("json"))
            .unwrap_or_else(|e| panic!("{name}: no JSON report ({e}):\n{stdout}")),
    )
    .unwrap();
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("**Verdict"), "{text}");
    assert!(
        std::fs::read_to_string(md.with_extension("svg"))
            .unwrap()
            .starts_with("<svg"),
        "{name}: the SVG timeline"
    );
    (json["runs"][0]["report"].clone(), stdout)
}

fn assert_failed_over(name: &str, r: &Value, stdout: &str, within_s: f64) {
    let m = &r["measures"];
    assert!(
        m["new_leader"].is_string(),
        "{name}: no new leader:\n{stdout}"
    );
    let ms = m["new_leader_ms"].as_f64().unwrap();
    assert!(
        ms < within_s * 1000.0,
        "{name}: new leader after {ms} ms:\n{stdout}"
    );
    assert!(m["write_gap_ms"].as_f64().unwrap() > 0.0);
    assert!(
        m["reintegration_ms"].is_number(),
        "{name}: old leader never followed:\n{stdout}"
    );
    assert!(r["heal_ms"].is_number(), "{name}: not healed:\n{stdout}");
    assert!(
        r["read_back_from"].is_string(),
        "{name}: no read back:\n{stdout}"
    );
    eprintln!(
        "{name}: new leader after {:.2} s, write gap {:.2} s, lost {}, reintegration {:.2} s",
        ms / 1000.0,
        m["write_gap_ms"].as_f64().unwrap() / 1000.0,
        m["lost"].as_array().unwrap().len(),
        m["reintegration_ms"].as_f64().unwrap() / 1000.0
    );
}

/// Starts a failover and returns it once it says the fault is in, with the target's name.
// The caller signals and waits for the child it gets back.
#[allow(clippy::zombie_processes)]
fn start_until_injected(args: &[&str]) -> (std::process::Child, String, mpsc::Receiver<String>) {
    let mut all = vec!["--lab", "failover"];
    all.extend_from_slice(args);
    let mut child = kbz_spawn(&all);
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let mut seen = String::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no 'injected' line within 30 s:\n{seen}"));
        if let Some(rest) = line.split(" injected on ").nth(1) {
            return (child, rest.trim().to_string(), rx);
        }
        seen.push_str(&line);
        seen.push('\n');
        assert!(start.elapsed() < Duration::from_secs(30), "{seen}");
    }
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child this test started.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Waits for a child whose stdout was taken (2 minutes at most).
fn wait_child(mut child: std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kbz did not end within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rest(rx: &mpsc::Receiver<String>) -> String {
    let mut text = String::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(60)) {
        text.push_str(&l);
        text.push('\n');
    }
    text
}

fn set_priority(hosts: &[String], priority: u32) {
    for h in hosts {
        openssh(
            &ip_of(&lab_hosts(), h),
            &format!("{RCLI} CONFIG SET replica-priority {priority}"),
            5,
        );
    }
}

const RCLI: &str =
    "REDISCLI_AUTH=$(cat /etc/kbz/secrets/redis_password) redis-cli --no-auth-warning";

#[test]
fn failover_tests_measure_and_always_heal() {
    require_lab_prerequisites();
    let _ = std::fs::remove_dir_all(config_home());
    let _ = std::fs::remove_dir_all(reports());
    kbz_ok(&["lab", "down"]);
    kbz_ok(&["lab", "up"]);
    kbz_ok(&["--lab", "install", "--from", "2", "--skip-cleanup", "--yes"]);

    // Redis: the master killed (kept down until healed), frozen.
    let (r, out) = failover(
        "redis-kill",
        &["redis", "--fault", "kill", "--target", "leader"],
    );
    assert_failed_over("redis kill", &r, &out, 10.0);
    let (r, out) = failover("redis-freeze", &["redis", "--fault", "freeze"]);
    assert_failed_over("redis freeze", &r, &out, 10.0);

    // Redis: the master cut from its peers while clients still reach it. It keeps
    // acknowledging writes after the others elected a new master: a real split brain, and
    // those writes are lost when it rejoins as a replica. Both are counted, not hidden.
    let (r, out) = failover("redis-partition", &["redis", "--fault", "partition"]);
    assert_failed_over("redis partition", &r, &out, 10.0);
    let m = &r["measures"];
    assert!(!m["split_brain"].as_array().unwrap().is_empty(), "{out}");
    assert!(!m["lost"].as_array().unwrap().is_empty(), "{out}");
    assert!(
        r["verdict"].as_str().unwrap().contains("SPLIT BRAIN"),
        "{out}"
    );

    // PostgreSQL through HAProxy: Patroni killed, the leader's host crashed, frozen, cut off.
    let (r, out) = failover("pg-kill", &["postgres", "--fault", "kill"]);
    assert_failed_over("postgres kill", &r, &out, 25.0);
    assert!(
        r["rejoined_by"].is_string(),
        "pg_rewind or not, said: {out}"
    );
    let (r, out) = failover("pg-crash", &["postgres", "--fault", "crash"]);
    assert_failed_over("postgres crash", &r, &out, 25.0);
    let (r, out) = failover("pg-freeze", &["postgres", "--fault", "freeze"]);
    assert_failed_over("postgres freeze", &r, &out, 25.0);
    let (r, out) = failover("pg-partition", &["postgres", "--fault", "partition"]);
    assert_failed_over("postgres partition", &r, &out, 25.0);
    assert!(ledger().is_empty(), "{:?}", ledger());

    // Ctrl-C while the fault is in: healed before kbz ends.
    let (child, target, rx) =
        start_until_injected(&["redis", "--fault", "stop", "--duration", "60", "--yes"]);
    assert!(
        !active(&target, "redis-server"),
        "the stop is in on {target}"
    );
    signal(&child, libc::SIGINT);
    let text = rest(&rx);
    let status = wait_child(child);
    assert!(text.contains(&format!("stop healed on {target}")), "{text}");
    assert!(text.contains("cancelled (Ctrl-C)"), "{text}");
    assert_eq!(status.code(), Some(1));
    assert!(active(&target, "redis-server"), "{target} healed");
    assert!(ledger().is_empty(), "{:?}", ledger());

    // kbz killed while the fault is in: the ledger keeps it, the next start heals it.
    let (child, target, _rx) =
        start_until_injected(&["redis", "--fault", "stop", "--duration", "60", "--yes"]);
    signal(&child, libc::SIGKILL);
    let _ = wait_child(child);
    assert_eq!(ledger().len(), 1, "the fault is in the ledger");
    assert!(!active(&target, "redis-server"));
    let (_, out) = failover(
        "redis-after-kill",
        &["redis", "--fault", "stop", "--duration", "15"],
    );
    assert!(
        out.contains(&format!(
            "healed stop on {target} (redis), left by an earlier run"
        )),
        "{out}"
    );
    assert!(ledger().is_empty(), "{:?}", ledger());

    // The preflight says no (no replica can be promoted): refused; forced, no failover, and
    // the report says why.
    let leader = {
        let v: Value =
            serde_json::from_str(&kbz_ok(&["--lab", "status", "redis", "--json"])).unwrap();
        v[0]["leader"].as_str().unwrap().to_string()
    };
    let replicas: Vec<String> = ["redis-01", "redis-02", "redis-03"]
        .iter()
        .filter(|h| **h != leader)
        .map(|h| h.to_string())
        .collect();
    // Five times in a row: the replicas at priority 0, the very next doctor says no replica
    // can be promoted, and a failover started at once is refused by its preflight. Both read
    // each replica's own setting, not a Sentinel's cached copy (refreshed every 10 s), so
    // neither waits for a refresh and neither may disagree with the other.
    let doctor =
        || String::from_utf8_lossy(&kbz(&["--lab", "doctor", "redis"]).stdout).into_owned();
    for round in 1..=5 {
        // From a healthy cluster: right after the earlier faults' heals a replica may still
        // be resyncing, and its own reading may miss the probe.
        let start = Instant::now();
        while doctor().contains("warning:") {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "round {round}: redis never settled:\n{}",
                doctor()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        set_priority(&replicas, 0);
        let said = doctor();
        let at = Instant::now();
        assert!(
            said.contains("every replica has replica-priority 0"),
            "round {round}: the first doctor after the change:\n{said}"
        );
        let out = kbz(&[
            "--lab",
            "failover",
            "redis",
            "--yes",
            "--report",
            &reports().join("refused.md").display().to_string(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "round {round}: refused {:.2} s after doctor said it",
            at.elapsed().as_secs_f64()
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains("refused by the preflight: no replica of redis can be promoted"),
            "round {round}: {text}"
        );
        assert!(ledger().is_empty(), "round {round}: nothing injected");
        if round < 5 {
            // Back to 100: doctor clears once every Sentinel has asked the replicas again.
            set_priority(&replicas, 100);
            let start = Instant::now();
            while doctor().contains("can be promoted") {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "round {round}: the Sentinels never saw priority 100 again"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    let (r, out) = failover("redis-forced", &["redis", "--force", "--duration", "12"]);
    let verdict = r["verdict"].as_str().unwrap();
    assert!(
        verdict
            .starts_with("NO FAILOVER, as the preflight said: no replica of redis can be promoted"),
        "{verdict}\n{out}"
    );
    assert!(r["measures"]["new_leader"].is_null());
    let md = std::fs::read_to_string(reports().join("redis-forced.md")).unwrap();
    assert!(
        md.contains("Preflight: **no replica of redis can be promoted**"),
        "{md}"
    );
    set_priority(&replicas, 100);
    assert!(ledger().is_empty());
    kbz_ok(&["lab", "down"]);
}
