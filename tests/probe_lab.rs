//! Probes and `kbz doctor` against the lab's real services (after the modules installed them):
//! the healthy status, a stopped replica seen degraded within 2 s, and each case doctor must
//! catch, set up for real and put back: a Sentinel quorum that cannot survive losing one more
//! host, both Redis replicas with replica-priority 0, Patroni paused, a replica lagging beyond
//! maximum_lag_on_failover, HAProxy sending writes to replicas. Needs root (the lab).

mod common;
use common::*;
use std::time::{Duration, Instant};

fn on(host: &str, command: &str) {
    let out = openssh(&ip_of(&lab_hosts(), host), command, 5);
    assert!(
        out.status.success(),
        "{host}: {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `kbz --lab doctor CLUSTER` until its output contains `want` (exit 1), or fails.
fn doctor_says(cluster: &str, want: &str, within: Duration) -> (String, Duration) {
    let start = Instant::now();
    loop {
        let out = kbz(&["--lab", "doctor", cluster]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(want) {
            assert_eq!(out.status.code(), Some(1), "{text}");
            return (text, start.elapsed());
        }
        assert!(
            start.elapsed() < within,
            "doctor never said {want:?}; last:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn doctor_clean(cluster: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let out = kbz(&["--lab", "doctor", cluster]);
        if out.status.success() {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{cluster} did not come back healthy:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

const RCLI: &str =
    "REDISCLI_AUTH=$(cat /etc/kbz/secrets/redis_password) redis-cli --no-auth-warning";

#[test]
fn status_and_doctor_on_the_real_services() {
    require_lab_prerequisites();
    let _ = std::fs::remove_dir_all(config_home());
    kbz_ok(&["lab", "up"]);
    kbz_ok(&["--lab", "install", "--from", "2", "--skip-cleanup", "--yes"]);

    // Healthy, as JSON.
    let json = kbz_ok(&["--lab", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pg = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == "postgres")
        .unwrap();
    assert_eq!(pg["leader"], "db-master-01", "{json}");
    assert_eq!(pg["quorum"]["needed"], 2);
    let lb = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == "haproxy")
        .unwrap();
    assert_eq!(
        lb["routes"]["postgres_primary"][0], "db-master-01",
        "{json}"
    );
    let healthy = kbz(&["--lab", "doctor"]);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stdout)
    );

    // A stopped replica shows degraded within 2 s.
    on("db-slave-02", "systemctl stop patroni");
    let start = Instant::now();
    loop {
        let out = kbz_ok(&["--lab", "status", "postgres"]);
        if out.contains("2/3 up") && out.contains("replica db-slave-02 is stopped") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "not degraded within 2 s:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("stopped replica seen degraded after {:?}", start.elapsed());
    on("db-slave-02", "systemctl start patroni");
    doctor_clean("postgres", Duration::from_secs(60));

    // One Sentinel down: one more loss and no failover.
    on("redis-03", "systemctl stop redis-sentinel");
    let (text, _) = doctor_says(
        "redis",
        "are one loss away from no quorum (2 of 3 up, 2 needed)",
        Duration::from_secs(15),
    );
    assert!(text.contains("Fix: start the stopped Sentinels"), "{text}");
    on("redis-03", "systemctl start redis-sentinel");
    doctor_clean("redis", Duration::from_secs(30));

    // Both replicas with replica-priority 0.
    for r in ["redis-02", "redis-03"] {
        on(r, &format!("{RCLI} CONFIG SET replica-priority 0"));
    }
    let (text, _) = doctor_says(
        "redis",
        "every replica has replica-priority 0",
        Duration::from_secs(20),
    );
    assert!(
        text.contains("Fix: set replica-priority to a non-zero value"),
        "{text}"
    );
    for r in ["redis-02", "redis-03"] {
        on(r, &format!("{RCLI} CONFIG SET replica-priority 100"));
    }
    doctor_clean("redis", Duration::from_secs(30));

    // Patroni paused.
    on(
        "db-master-01",
        "patronictl -c /etc/patroni/config.yml pause --wait",
    );
    let (text, _) = doctor_says(
        "postgres",
        "is in maintenance mode (paused)",
        Duration::from_secs(10),
    );
    assert!(
        text.contains("Fix: patronictl -c /etc/patroni/config.yml resume"),
        "{text}"
    );
    on(
        "db-master-01",
        "patronictl -c /etc/patroni/config.yml resume --wait",
    );
    doctor_clean("postgres", Duration::from_secs(30));

    // A replica far behind: frozen while the leader writes.
    kbz_ok(&["lab", "fault", "db-slave-02", "freeze"]);
    on(
        "db-master-01",
        "runuser -u postgres -- psql -h /var/run/postgresql -qc 'create table if not exists kbz_lag (x int); insert into kbz_lag select generate_series(1, 300000)'",
    );
    let (text, _) = doctor_says(
        "postgres",
        "bytes behind (maximum_lag_on_failover 1048576)",
        Duration::from_secs(8),
    );
    assert!(
        text.contains("Patroni will not promote a replica that far behind"),
        "{text}"
    );
    kbz_ok(&["lab", "fault", "db-slave-02", "thaw"]);
    doctor_clean("postgres", Duration::from_secs(60));

    // HAProxy routing writes to the replicas.
    on(
        "haproxy-01",
        "sed -i 's|GET /primary|GET /replica|' /etc/haproxy/haproxy.cfg && systemctl reload haproxy",
    );
    let (text, _) = doctor_says(
        "haproxy",
        "sends postgres_primary traffic to",
        Duration::from_secs(10),
    );
    assert!(text.contains("not to the leader db-master-01"), "{text}");
    assert!(
        text.contains("Fix: check postgres_primary's health check"),
        "{text}"
    );
    kbz_ok(&[
        "--lab",
        "install",
        "--module",
        "8",
        "--skip-cleanup",
        "--yes",
    ]);
    doctor_clean("haproxy", Duration::from_secs(20));
    kbz_ok(&["lab", "down"]);
}
