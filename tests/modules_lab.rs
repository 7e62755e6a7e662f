//! Modules in the lab, as an operator runs them: the full install from module 2 ends healthy
//! (checked from a lab host with the services' own tools), a second run is idempotent,
//! cleanup leaves nothing of Redis and reinstalling brings it back healthy. A fixture
//! catalogue shows a failing host stopping the run and `--from` resuming it, an external
//! command on the orchestrator streaming, and Ctrl-C stopping the remote processes while
//! keeping the logs. Needs root (the lab).

mod common;
use common::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Both tests use the tests' one lab; they take turns.
static LAB: Mutex<()> = Mutex::new(());

fn lab_ip(name: &str) -> String {
    ip_of(&lab_hosts(), name)
}

/// Runs a command on a lab host with OpenSSH and returns its stdout; fails with its stderr.
fn on(host: &str, command: &str) -> String {
    let out = openssh(&lab_ip(host), command, 5);
    assert!(
        out.status.success(),
        "{host}: {command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the done-when asks, seen with the services' own tools from lab hosts.
fn assert_healthy() {
    let list = on(
        "db-master-01",
        "patronictl -c /etc/patroni/config.yml list -f json",
    );
    let members: serde_json::Value = serde_json::from_str(&list).unwrap();
    let members = members.as_array().unwrap();
    let leaders = members.iter().filter(|m| m["Role"] == "Leader").count();
    let replicas = members.iter().filter(|m| m["Role"] == "Replica").count();
    assert_eq!((leaders, replicas), (1, 2), "patronictl list: {list}");
    for db in ["db-master-01", "db-slave-01", "db-slave-02"] {
        let r = on(
            db,
            "runuser -u postgres -- psql -h /var/run/postgresql -tAc \"select coalesce((select status from pg_stat_wal_receiver), (select count(*)::text from pg_stat_replication where state = 'streaming'))\"",
        );
        assert!(r.trim() == "streaming" || r.trim() == "2", "{db}: {r}");
    }
    for r in ["redis-01", "redis-02", "redis-03"] {
        let q = on(
            r,
            "REDISCLI_AUTH=$(cat /etc/kbz/secrets/redis_password) redis-cli --no-auth-warning -p 26379 SENTINEL CKQUORUM redis",
        );
        assert!(q.starts_with("OK 3 usable Sentinels"), "{r}: {q}");
    }
    let master = on(
        "redis-01",
        "REDISCLI_AUTH=$(cat /etc/kbz/secrets/redis_password) redis-cli --no-auth-warning -p 26379 SENTINEL get-master-addr-by-name redis | head -1",
    );
    let info = on(
        "redis-01",
        &format!(
            "REDISCLI_AUTH=$(cat /etc/kbz/secrets/redis_password) redis-cli --no-auth-warning -h {} INFO replication",
            master.trim()
        ),
    );
    assert!(info.contains("connected_slaves:2"), "{info}");
    assert_rabbitmq_healthy();
    // A write through the floating address reaches the PostgreSQL leader and the Redis
    // master. The passwords are the ones kbz generated (its state dir).
    let secrets = std::fs::read_to_string(state_home().join("kbz/secrets/lab.toml")).unwrap();
    let secret = |name: &str| {
        let t: toml::Table = toml::from_str(&secrets).unwrap();
        t[name].as_str().unwrap().to_string()
    };
    let vars: toml::Table =
        toml::from_str(&std::fs::read_to_string(lab_dir().join("kbz.toml")).unwrap()).unwrap();
    let vip = vars["vars"]["haproxy_vip"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let pg = on(
        "install-01",
        &format!(
            "PGPASSWORD={} psql -h {vip} -U postgres -d postgres -qtAX -c \"create table if not exists kbz_test (v text); insert into kbz_test values ('via-vip'); select pg_is_in_recovery()\"",
            secret("pg_superuser_password")
        ),
    );
    assert_eq!(pg.trim(), "f", "the write through {vip} reached a primary");
    let redis = on(
        "install-01",
        &format!(
            "REDISCLI_AUTH={} redis-cli --no-auth-warning -h {vip} SET kbz:test via-vip && REDISCLI_AUTH={} redis-cli --no-auth-warning -h {vip} ROLE | head -1",
            secret("redis_password"),
            secret("redis_password")
        ),
    );
    assert_eq!(redis.lines().collect::<Vec<_>>(), ["OK", "master"]);
}

/// RabbitMQ as its own tools say: 3 running nodes in one cluster, the failover queue with one
/// leader and 2 followers on the same term.
fn assert_rabbitmq_healthy() {
    let status = on("queue-02", "rabbitmqctl -q cluster_status --formatter json");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["running_nodes"].as_array().unwrap().len(), 3, "{status}");
    assert!(v["partitions"].as_object().unwrap().is_empty(), "{status}");
    let q = on(
        "queue-03",
        "rabbitmq-queues -q quorum_status kbz.failover --formatter json",
    );
    let members: serde_json::Value = serde_json::from_str(&q).unwrap();
    let states: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Raft State"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "leader").count(), 1, "{q}");
    assert_eq!(
        states.iter().filter(|s| **s == "follower").count(),
        2,
        "{q}"
    );
    let left = on("queue-01", "rabbitmqctl -q list_users --formatter json");
    assert!(!left.contains("\"guest\""), "no guest user: {left}");
}

#[test]
fn install_from_2_is_healthy_idempotent_and_reinstallable() {
    let _turn = LAB.lock().unwrap_or_else(|p| p.into_inner());
    require_lab_prerequisites();
    let _ = std::fs::remove_dir_all(config_home());
    kbz_ok(&["lab", "up"]);
    let start = Instant::now();
    let out = kbz_ok(&["--lab", "install", "--from", "2", "--yes"]);
    eprintln!(
        "full install (modules 2, 3, 4, 5, 7, 8) took {:?}",
        start.elapsed()
    );
    assert!(out.contains(": ok in"), "{out}");
    assert_healthy();
    // No secret in any log kbz kept.
    let secrets = std::fs::read_to_string(state_home().join("kbz/secrets/lab.toml")).unwrap();
    let t: toml::Table = toml::from_str(&secrets).unwrap();
    for (name, value) in &t {
        let v = value.as_str().unwrap();
        assert!(!out.contains(v), "{name} printed");
        let grep = std::process::Command::new("grep")
            .args(["-rl", v])
            .arg(state_home().join("kbz/runs"))
            .output()
            .unwrap();
        assert!(
            grep.stdout.is_empty(),
            "{name} in {}",
            String::from_utf8_lossy(&grep.stdout)
        );
    }

    // Again: nothing restarted, still healthy.
    let again = kbz_ok(&["--lab", "install", "--from", "2", "--skip-cleanup", "--yes"]);
    assert!(
        again.contains("patroni already running with this config"),
        "{again}"
    );
    assert!(again.contains("redis already serving as master"), "{again}");
    assert!(
        again.contains("haproxy already running with this config"),
        "{again}"
    );
    assert_healthy();

    // Cleanup of Redis leaves nothing; installing it again is healthy.
    kbz_ok(&["--lab", "cleanup", "--module", "4", "--yes"]);
    for r in ["redis-01", "redis-02", "redis-03"] {
        let left = on(
            r,
            "pgrep -x redis-server; pgrep -x redis-sentinel; systemctl is-enabled redis-server redis-sentinel; ls -A /var/lib/redis | wc -l; true",
        );
        assert_eq!(
            left.split_whitespace().collect::<Vec<_>>(),
            ["disabled", "disabled", "0"],
            "{r}: {left}"
        );
    }
    kbz_ok(&["--lab", "install", "--module", "4", "--yes"]);
    assert_healthy();

    // Cleanup of RabbitMQ leaves no process, node database, cookie or enabled unit;
    // installing it again forms the cluster and the queue anew.
    kbz_ok(&["--lab", "cleanup", "--module", "5", "--yes"]);
    for q in ["queue-01", "queue-02", "queue-03"] {
        let left = on(
            q,
            "pgrep -x beam.smp; systemctl is-enabled rabbitmq-server; ls -A /var/lib/rabbitmq | wc -l; ls /etc/kbz/secrets; true",
        );
        assert_eq!(
            left.split_whitespace().collect::<Vec<_>>(),
            ["disabled", "0"],
            "{q}: {left}"
        );
    }
    kbz_ok(&["--lab", "install", "--module", "5", "--yes"]);
    assert_rabbitmq_healthy();
    let runs = kbz_ok(&["runs"]);
    assert!(
        runs.lines().filter(|l| l.contains(" ok ")).count() >= 4,
        "{runs}"
    );
    kbz_ok(&["lab", "down"]);
}

fn fixture(dir: &std::path::Path) {
    let m = |name: &str, toml: &str, install: Option<&str>| {
        let d = dir.join("modules").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("module.toml"), toml).unwrap();
        if let Some(script) = install {
            std::fs::write(d.join("install.sh"), script).unwrap();
        }
    };
    m(
        "90-flaky",
        "number = 90\nname = \"flaky\"\ntitle = \"fails on redis-02 while /tmp/kbz-fail exists\"\ndescription = \"test\"\n[targets]\ntechnologies = [\"redis\"]\n",
        Some(
            "set -e\necho '::step first'\nsleep 0.5\necho '::step second'\nif [ -e /tmp/kbz-fail ]; then echo 'boom on purpose' >&2; exit 3; fi\necho fine\n",
        ),
    );
    m(
        "91-after",
        "number = 91\nname = \"after\"\ntitle = \"leaves a mark\"\ndescription = \"test\"\n[targets]\ntechnologies = [\"redis\"]\n",
        Some("touch /tmp/kbz-module-91-ran\n"),
    );
    m(
        "92-external",
        "number = 92\nname = \"external\"\ntitle = \"the team's own installer\"\ndescription = \"test\"\n[targets]\n[external]\ninstall = \"echo external on $(hostname) for ENV $KBZ_ENV; for i in 1 2 3; do echo tick $i; sleep 0.2; done\"\n",
        None,
    );
    m(
        "93-long",
        "number = 93\nname = \"long\"\ntitle = \"sleeps\"\ndescription = \"test\"\n[targets]\ntechnologies = [\"redis\"]\n",
        Some("echo '::step sleeping'\nif [ -e /tmp/kbz-long ]; then exec sleep 31337; fi\n"),
    );
    std::fs::write(
        dir.join("config.toml"),
        format!("modules_dir = \"{}\"\n", dir.join("modules").display()),
    )
    .unwrap();
}

fn run_fixture(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    wait_output(kbz_spawn_with(config, args), args)
}

#[test]
fn failing_host_stops_from_resumes_external_streams_ctrl_c_stops() {
    let _turn = LAB.lock().unwrap_or_else(|p| p.into_inner());
    require_lab_prerequisites();
    let config = std::path::PathBuf::from("/tmp/kbz-tests/config-fixture/kbz");
    let _ = std::fs::remove_dir_all(&config);
    fixture(&config);
    let config_home = config.parent().unwrap();
    kbz_ok(&["lab", "up"]);
    // A previous failed run may have left its marks.
    for r in ["redis-01", "redis-02", "redis-03"] {
        on(
            r,
            "rm -f /tmp/kbz-long /tmp/kbz-fail /tmp/kbz-module-91-ran; pkill -f '[s]leep 31337'; true",
        );
    }
    on("redis-02", "touch /tmp/kbz-fail");

    // redis-02 fails at step "second"; the others finish the phase; 91 never starts.
    let out = run_fixture(config_home, &["--lab", "install", "--from", "90", "--yes"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "redis-02 failed in module 90 flaky, install, step \"second\" (exit 3); its last lines:"
        ),
        "{text}"
    );
    assert!(text.contains("boom on purpose"), "{text}");
    assert!(
        text.contains("resume with: kbz install --from 90"),
        "{text}"
    );
    assert!(
        text.contains("redis-01 │ fine") || text.contains("fine"),
        "others finished: {text}"
    );
    assert!(!text.contains("module 91"), "{text}");
    let ran = openssh(&lab_ip("redis-01"), "test -e /tmp/kbz-module-91-ran", 5);
    assert!(!ran.status.success(), "module 91 must not have started");

    // Fixed; --from resumes: 90 passes, 91 runs, the external command streams from
    // install-01.
    on("redis-02", "rm -f /tmp/kbz-fail");
    let out = run_fixture(
        config_home,
        &[
            "--lab",
            "install",
            "--from",
            "90",
            "--skip-cleanup",
            "--yes",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("redis-02 ") && l.ends_with("│ fine")),
        "{text}"
    );
    assert!(
        text.contains("install-01 │ external on install-01 for ENV lab"),
        "{text}"
    );
    assert!(text.contains("install-01 │ tick 3"), "{text}");
    on("redis-01", "test -e /tmp/kbz-module-91-ran");

    // Ctrl-C in the middle: exit 130, the remote sleeps are gone, the logs are kept.
    for r in ["redis-01", "redis-02", "redis-03"] {
        on(r, "touch /tmp/kbz-long");
    }
    let child = kbz_spawn_with(
        config_home,
        &["--lab", "install", "--module", "93", "--yes"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = on("redis-03", "pgrep -fc '[s]leep 31337' || true");
        if n.trim() != "0" {
            break;
        }
        assert!(Instant::now() < deadline, "the long module never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: signals the kbz this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = wait_output(child, &["install", "--module", "93"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("cancelled in module 93, install"), "{text}");
    std::thread::sleep(Duration::from_secs(1));
    for r in ["redis-01", "redis-02", "redis-03"] {
        let n = on(r, "pgrep -fc '[s]leep 31337' || true");
        assert_eq!(n.trim(), "0", "{r} still runs the cancelled script");
    }
    let logs = text
        .lines()
        .find_map(|l| l.strip_prefix("logs: "))
        .expect("the run's log dir");
    let log = std::fs::read_to_string(format!("{logs}/93-long/install/redis-03.log")).unwrap();
    assert!(log.contains("::step sleeping"), "{log}");
    kbz_ok(&["lab", "down"]);
}
