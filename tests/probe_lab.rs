//! Probes and `kbz doctor` against the lab's real services (after the modules installed them):
//! the healthy status, a stopped replica seen degraded within 2 s, and each case doctor must
//! catch, set up for real and put back: a Sentinel quorum that cannot survive losing one more
//! host, both Redis replicas with replica-priority 0, Patroni paused, a replica lagging beyond
//! maximum_lag_on_failover, HAProxy sending writes to replicas. Needs root (the lab).

mod common;
use common::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests share the tests' one lab; they take turns.
static LAB: Mutex<()> = Mutex::new(());

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
    let _turn = LAB.lock().unwrap_or_else(|p| p.into_inner());
    require_lab_prerequisites();
    let _ = std::fs::remove_dir_all(config_home());
    // A fresh lab: a run that failed half-way may have left a fault in place.
    kbz_ok(&["lab", "down"]);
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

    // The load balancers' health checks leave Patroni's journal quiet (a GET check ended by
    // HAProxy's RST made Patroni log a traceback for each, several a second).
    std::thread::sleep(Duration::from_secs(3));
    let out = openssh(
        &ip_of(&lab_hosts(), "db-master-01"),
        "journalctl -u patroni --since -3s --no-pager | grep -c ConnectionResetError || true",
        5,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");

    // The endpoints the load-balancer module recorded, each in its own protocol.
    let json = kbz_ok(&["--lab", "endpoints", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let by_name = |n: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("no endpoint {n}: {json}"))
            .clone()
    };
    let pg = by_name("postgres-primary");
    assert_eq!(pg["ok"], true, "{json}");
    assert_eq!(pg["detail"], "primary on db-master-01", "{json}");
    assert!(pg["rtt_ms"].as_f64().unwrap() > 0.0, "{json}");
    let redis = by_name("redis-master");
    assert_eq!(redis["detail"], "master on redis-01", "{json}");
    assert_eq!(by_name("haproxy-stats")["detail"], "HTTP/1.1 200 OK");

    // Host basics; a failed unit is named by doctor (a warning: doctor still passes).
    let json = kbz_ok(&["--lab", "status", "--hosts", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 15, "{json}");
    assert!(
        v[0]["basics"]["mem_used_pct"].as_u64().unwrap() > 0,
        "{json}"
    );
    on(
        "redis-03",
        "systemd-run --unit=kbz-broken --quiet false; sleep 1",
    );
    let out = kbz(&["--lab", "doctor", "redis"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning: redis-03: failed unit kbz-broken.service"),
        "{text}"
    );
    assert!(out.status.success(), "{text}");
    on("redis-03", "systemctl reset-failed kbz-broken");

    // Probe commands wrapped from kbz.toml (as for services in containers): the wrapper runs.
    let toml = lab_dir().join("kbz.toml");
    let original = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!("{original}\n[probe_wrap]\nredis = \"touch /run/kbz-wrapped; sh -c {{}}\"\n"),
    )
    .unwrap();
    let redis = ["redis-01", "redis-02", "redis-03"];
    for h in redis {
        on(h, "rm -f /run/kbz-wrapped");
    }
    let out = kbz_ok(&["--lab", "status", "redis"]);
    assert!(out.contains("leader redis-01"), "{out}");
    let wrapped = redis
        .iter()
        .filter(|h| {
            openssh(&ip_of(&lab_hosts(), h), "test -e /run/kbz-wrapped", 5)
                .status
                .success()
        })
        .count();
    assert!(wrapped > 0, "no Redis host ran the wrapper");
    std::fs::write(&toml, "[probe_wrap]\nredis = \"no placeholder\"\n").unwrap();
    let out = kbz(&["--lab", "status", "redis"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("probe_wrap.redis has no {} where the probe command goes"),
        "{err}"
    );
    std::fs::write(&toml, original).unwrap();

    // The same servers seen as standalone PostgreSQL (no Patroni stack in the inventory):
    // read natively (tokio-postgres over the SSH connection), then by the CLI path (psql,
    // through a probe_wrap): the same answer.
    let dir = state_home().join("standalone");
    std::fs::create_dir_all(&dir).unwrap();
    let tsv = std::fs::read_to_string(lab_dir().join("servers.tsv"))
        .unwrap()
        .replace("patroni-node", "pg-standalone");
    std::fs::write(dir.join("servers.tsv"), tsv).unwrap();
    let _ = std::fs::remove_file(dir.join("kbz.toml"));
    let inventory = dir.join("servers.tsv");
    let standalone = |path: &str| -> serde_json::Value {
        let args = [
            "--lab",
            "--inventory",
            inventory.to_str().unwrap(),
            "status",
            "postgres-db-pool",
            "--json",
        ];
        let json = kbz_ok(&args);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let c = &v[0];
        assert_eq!(c["technology"], "postgres", "{path}: {json}");
        assert_eq!(c["leader"], "db-master-01", "{path}: {json}");
        assert_eq!(c["warnings"].as_array().unwrap().len(), 0, "{path}: {json}");
        let members = c["members"].as_array().unwrap();
        assert_eq!(members.len(), 3, "{path}: {json}");
        for m in members.iter().filter(|m| m["host"] != "db-master-01") {
            assert_eq!(m["role"], "standby", "{path}: {json}");
            assert_eq!(m["state"], "streaming", "{path}: {json}");
        }
        assert!(c["epoch"].as_u64().is_some(), "{path}: {json}");
        c["epoch"].clone()
    };
    let native = standalone("native");
    std::fs::write(
        dir.join("kbz.toml"),
        "[probe_wrap]\npostgres = \"sh -c {}\"\n",
    )
    .unwrap();
    assert_eq!(standalone("CLI path"), native);

    // A Sentinel that answers garbage, then one that accepts and never answers (a real
    // listener in its place on redis-03): that member is named with the reason, the others
    // still give the status, and it reads again once the real one is back.
    on(
        "redis-03",
        "cat > /run/kbz-bad-sentinel.py <<'PY'
import socket, sys
reply = b'HTTP/1.1 400 Bad Request\\r\\n\\r\\n' if sys.argv[1] == 'garbage' else b''
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 26379))
s.listen()
keep = []
while True:
    c, _ = s.accept()
    c.recv(100)
    c.sendall(reply)
    keep.append(c)
PY",
    );
    for (how, reason) in [
        ("garbage", "127.0.0.1:26379: "),
        ("silent", "127.0.0.1:26379: no answer within 1.0 s"),
    ] {
        on(
            "redis-03",
            &format!(
                "systemctl stop redis-sentinel; systemd-run --unit=kbz-bad-sentinel --quiet \
                 python3 /run/kbz-bad-sentinel.py {how}; sleep 0.5"
            ),
        );
        let out = kbz_ok(&["--lab", "status", "redis"]);
        assert!(out.contains("leader redis-01"), "{how}: {out}");
        let named = out
            .lines()
            .find(|l| l.contains("redis-03: its Sentinel cannot be read: "))
            .unwrap_or_else(|| panic!("{how}: redis-03's Sentinel not named:\n{out}"));
        assert!(named.contains(reason), "{how}: {named}");
        on(
            "redis-03",
            "systemctl stop kbz-bad-sentinel; systemctl start redis-sentinel",
        );
    }
    doctor_clean("redis", Duration::from_secs(60));

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
    // While the 300,000 rows replay, two cores shared by 15 hosts can keep the healthy
    // members' REST APIs past the probe's 1 s for a round; the lag stays until the thaw.
    let (text, _) = doctor_says(
        "postgres",
        "bytes behind (maximum_lag_on_failover 1048576)",
        Duration::from_secs(30),
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
        "sed -i 's|OPTIONS /primary|OPTIONS /replica|' /etc/haproxy/haproxy.cfg && grep -q 'OPTIONS /replica' /etc/haproxy/haproxy.cfg && systemctl reload haproxy",
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
    // An application writing through the floating address would reach a standby.
    let out = kbz(&["--lab", "endpoints"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("a standby (read-only): writes would fail"),
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

/// Watches `kbz --lab status CLUSTER --watch --json` until a line shows a leader other than
/// `old`; returns that line's time stamp (UTC, as kbz printed it).
fn wait_new_leader(child: &mut std::process::Child, old: &str) -> String {
    use std::io::BufRead;
    let out = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else {
            break;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let leader = v["status"]["leader"].as_str().unwrap_or("");
        if !leader.is_empty() && leader != old {
            return v["at"].as_str().unwrap().to_string();
        }
    }
    panic!("no new leader within 60 s");
}

/// "2026-11-28T05:51:55.730430+0000 ..." or "2026-11-28T05:51:55.835Z" -> seconds of the day.
fn seconds(stamp: &str) -> f64 {
    let t = &stamp[11..];
    let h: f64 = t[0..2].parse().unwrap();
    let m: f64 = t[3..5].parse().unwrap();
    let s: f64 = t[6..]
        .split(['+', 'Z', ' '])
        .next()
        .unwrap()
        .parse()
        .unwrap();
    h * 3600.0 + m * 60.0 + s
}

fn journal_first(hosts: &[&str], unit: &str, grep: &str) -> String {
    let mut stamps: Vec<String> = hosts
        .iter()
        .filter_map(|h| {
            let out = openssh(
                &ip_of(&lab_hosts(), h),
                &format!("journalctl -u {unit} -o short-iso-precise --no-pager | grep -F '{grep}' | tail -1 | cut -d' ' -f1"),
                5,
            );
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (!s.is_empty()).then_some(s)
        })
        .collect();
    stamps.sort();
    stamps
        .into_iter()
        .next()
        .expect("the cluster logged its change")
}

/// Kill the leader (Redis: its process; PostgreSQL: its whole host): the new leader is shown,
/// and how long after the cluster itself announced it is printed (goal: 1 s or less).
#[test]
fn leader_change_shows_soon_after_the_cluster_makes_it() {
    let _turn = LAB.lock().unwrap_or_else(|p| p.into_inner());
    require_lab_prerequisites();
    let _ = std::fs::remove_dir_all(config_home());
    kbz_ok(&["lab", "up"]);
    kbz_ok(&["--lab", "install", "--from", "2", "--skip-cleanup", "--yes"]);
    let leader_of = |cluster: &str| -> String {
        let v: serde_json::Value =
            serde_json::from_str(&kbz_ok(&["--lab", "status", cluster, "--json"])).unwrap();
        v[0]["leader"].as_str().unwrap().to_string()
    };

    let old = leader_of("redis");
    let mut watch = kbz_spawn(&["--lab", "status", "redis", "--watch", "--json"]);
    std::thread::sleep(Duration::from_secs(2));
    on(
        &old,
        "systemctl kill -s KILL redis-server; systemctl stop redis-server",
    );
    let shown = wait_new_leader(&mut watch, &old);
    let _ = watch.kill();
    let _ = watch.wait();
    let switched = journal_first(
        &["redis-01", "redis-02", "redis-03"],
        "redis-sentinel",
        "+switch-master",
    );
    eprintln!(
        "redis: +switch-master at {switched}, kbz showed the new master at {shown}: {:.2} s later",
        seconds(&shown) - seconds(&switched)
    );
    on(&old, "systemctl start redis-server");

    let old = leader_of("postgres");
    let mut watch = kbz_spawn(&["--lab", "status", "postgres", "--watch", "--json"]);
    std::thread::sleep(Duration::from_secs(2));
    kbz_ok(&["lab", "fault", &old, "crash"]);
    let shown = wait_new_leader(&mut watch, &old);
    let _ = watch.kill();
    let _ = watch.wait();
    let others: Vec<&str> = ["db-master-01", "db-slave-01", "db-slave-02"]
        .into_iter()
        .filter(|h| *h != old)
        .collect();
    let promoted = journal_first(&others, "patroni", "promoted self to leader");
    eprintln!(
        "postgres: promoted at {promoted}, kbz showed the new leader at {shown}: {:.2} s later",
        seconds(&shown) - seconds(&promoted)
    );
    kbz_ok(&["lab", "down"]);
}
