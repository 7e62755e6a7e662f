//! RabbitMQ in the lab, after module 5 installed it: `kbz status` shows the live roles and
//! the failover queue's term, and `kbz doctor` catches each case set up for real and put
//! back: a quorum queue with 2 members, a classic queue holding messages, a memory alarm (the
//! watermark lowered), a node cut from its peers (pause_minority pauses it). Then `kbz
//! failover rabbitmq` kills, partitions and freezes the queue leader's node: a new leader in
//! time, no confirmed message lost, the fault healed, the old leader's member caught up
//! again. Needs root (the lab).

mod common;
use common::*;
use std::time::{Duration, Instant};

fn on(host: &str, command: &str) -> String {
    let out = openssh(&ip_of(&lab_hosts(), host), command, 5);
    assert!(
        out.status.success(),
        "{host}: {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The management API as kbz's administrator (module 5's `kbz` user), from `host`.
fn admin(host: &str, method: &str, path: &str, json: &str) {
    let ip = ip_of(&lab_hosts(), host);
    on(
        host,
        &format!(
            "printf 'user = \"kbz:%s\"\\n' \"$(sed -n 's/^default_pass = //p' /etc/rabbitmq/rabbitmq.conf)\" | curl -sS -f -m 5 -K - -X {method} -H 'content-type: application/json' --data '{json}' 'http://{ip}:15672/api{path}'"
        ),
    );
}

/// `kbz --lab doctor rabbitmq` until it warns `want` (CRITICAL, with exit 1, or a warning),
/// or fails; how long it took.
fn doctor_says(want: &str, critical: bool, within: Duration) -> Duration {
    let start = Instant::now();
    let tag = if critical { "CRITICAL" } else { "warning" };
    loop {
        let out = kbz(&["--lab", "doctor", "rabbitmq"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(want) {
            assert!(text.contains(&format!("{tag}: {want}")), "{text}");
            assert_eq!(out.status.code(), Some(i32::from(critical)), "{text}");
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "doctor never said {want:?}; last:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn doctor_clean(within: Duration) {
    let start = Instant::now();
    loop {
        let out = kbz(&["--lab", "doctor", "rabbitmq"]);
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && !text.contains("warning:") {
            return;
        }
        assert!(
            start.elapsed() < within,
            "rabbitmq did not come back healthy:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn status_and_doctor_on_the_real_rabbitmq() {
    require_lab_prerequisites();
    let _ = std::fs::remove_dir_all(config_home());
    kbz_ok(&["lab", "down"]);
    kbz_ok(&["lab", "up"]);
    kbz_ok(&["--lab", "install", "--from", "2", "--skip-cleanup", "--yes"]);

    // Healthy: three running nodes, the failover queue's leader as the cluster's, its term.
    // Right after the install a member can still be catching up (CI saw 2 of 3 online once):
    // read until all three are, for up to 30 s, then assert.
    let mut json = String::new();
    for _ in 0..60 {
        json = kbz_ok(&["--lab", "status", "rabbitmq", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        if v[0]["groups"][0]["online"]
            .as_array()
            .is_some_and(|o| o.len() == 3)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let c = &v[0];
    assert_eq!(c["technology"], "rabbitmq", "{json}");
    let leader = c["leader"].as_str().expect("a leader").to_string();
    assert!(leader.starts_with("queue-0"), "{json}");
    assert!(c["epoch"].as_u64().is_some_and(|t| t >= 1), "{json}");
    assert_eq!(c["quorum"]["up"], 3, "{json}");
    let q = &c["groups"][0];
    assert_eq!(q["name"], "kbz.failover", "{json}");
    assert_eq!(q["online"].as_array().unwrap().len(), 3, "{json}");
    let lb = kbz_ok(&["--lab", "status", "haproxy"]);
    assert!(
        lb.contains("rabbitmq_amqp -> queue-01, queue-02, queue-03"),
        "{lb}"
    );
    doctor_clean(Duration::from_secs(20));

    // A quorum queue with 2 members.
    admin(
        "queue-01",
        "PUT",
        "/queues/%2F/kbz.test.two",
        r#"{"durable":true,"arguments":{"x-queue-type":"quorum","x-quorum-initial-group-size":2}}"#,
    );
    doctor_says(
        "quorum queue kbz.test.two has 2 member(s)",
        true,
        Duration::from_secs(15),
    );
    admin("queue-01", "DELETE", "/queues/%2F/kbz.test.two", "{}");

    // A classic queue holding messages (the API's message counts lag up to 5 s).
    admin(
        "queue-01",
        "PUT",
        "/queues/%2F/kbz.test.classic",
        r#"{"durable":true,"arguments":{"x-queue-type":"classic"}}"#,
    );
    for i in 0..3 {
        admin(
            "queue-01",
            "POST",
            "/exchanges/%2F/amq.default/publish",
            &format!(
                r#"{{"properties":{{"delivery_mode":2}},"routing_key":"kbz.test.classic","payload":"m{i}","payload_encoding":"string"}}"#
            ),
        );
    }
    doctor_says(
        "1 classic queue(s), not replicated: kbz.test.classic on queue-01 (3 message(s))",
        false,
        Duration::from_secs(20),
    );
    admin("queue-01", "DELETE", "/queues/%2F/kbz.test.classic", "{}");
    doctor_clean(Duration::from_secs(20));

    // A memory alarm: queue-02's watermark lowered under what it uses.
    on(
        "queue-02",
        "rabbitmqctl -q set_vm_memory_high_watermark 0.0001",
    );
    let took = doctor_says("queue-02: memory alarm", true, Duration::from_secs(30));
    eprintln!("memory alarm named after {took:?}");
    on(
        "queue-02",
        "rabbitmqctl -q set_vm_memory_high_watermark 0.4",
    );
    doctor_clean(Duration::from_secs(30));

    // queue-03 cut from its peers (this machine still reaches it): pause_minority pauses it.
    let peers = format!(
        "{}, {}",
        ip_of(&lab_hosts(), "queue-01"),
        ip_of(&lab_hosts(), "queue-02")
    );
    on(
        "queue-03",
        &format!(
            "nft add table inet kbztest; nft add chain inet kbztest in '{{ type filter hook input priority 0; }}'; nft add chain inet kbztest out '{{ type filter hook output priority 0; }}'; nft add rule inet kbztest in ip saddr '{{ {peers} }}' drop; nft add rule inet kbztest out ip daddr '{{ {peers} }}' drop"
        ),
    );
    let cut = std::panic::catch_unwind(|| {
        doctor_says(
            "queue-03 is cut off from the cluster",
            true,
            Duration::from_secs(60),
        )
    });
    on("queue-03", "nft delete table inet kbztest");
    let took = cut.unwrap_or_else(|e| std::panic::resume_unwind(e));
    eprintln!("partitioned node named after {took:?}");
    doctor_clean(Duration::from_secs(90));

    // Failover: kill, partition, freeze on the leader's node; goals 5 s and 15 s.
    for (fault, within) in [("kill", 5.0), ("partition", 15.0), ("freeze", 15.0)] {
        let before = leader_and_term();
        let (r, out) = failover(fault);
        let m = &r["measures"];
        let new = m["new_leader"]
            .as_str()
            .unwrap_or_else(|| panic!("{fault}: no new leader:\n{out}"));
        assert_ne!(new, before.0, "{fault}: {out}");
        let ms = m["new_leader_ms"].as_f64().unwrap();
        assert!(
            ms < within * 1000.0,
            "{fault}: new leader after {ms} ms:\n{out}"
        );
        assert!(
            m["ok"].as_u64().unwrap() > 20,
            "{fault}: the workload ran:\n{out}"
        );
        assert_eq!(
            m["lost"].as_array().unwrap().len(),
            0,
            "{fault}: confirmed messages lost:\n{out}"
        );
        assert!(r["heal_ms"].is_number(), "{fault}: not healed:\n{out}");
        // The fault stays 10 s after the new leader (the registry's settle for RabbitMQ), past
        // both sides' net_ticktime: a cut then always ends with the cut node paused and
        // rejoining. A node frozen that long comes back, in some runs, a partition of its own
        // (measured: 1 of 3 freezes), which pause_minority never ends (only autoheal acts on
        // a partition found after it healed): the run must then restart it, say so, and see
        // it follow again.
        assert!(
            m["reintegration_ms"].is_number(),
            "{fault}: the old leader never caught up:\n{out}"
        );
        if let Some(why) = r["restarted"].as_str() {
            assert_eq!(fault, "freeze", "{fault} needed a restart ({why}):\n{out}");
            assert!(why.starts_with("partitioned from"), "{why}");
            let verdict = r["verdict"].as_str().unwrap();
            assert!(
                verdict.contains("kbz restarted it, then it followed again"),
                "{verdict}"
            );
            eprintln!(
                "rabbitmq {fault}: {} stayed {why}; kbz restarted it",
                before.0
            );
        }
        assert!(r["read_back_from"].is_string(), "{fault}: no drain:\n{out}");
        let after = leader_and_term();
        assert!(
            after.1 > before.1,
            "{fault}: term {} -> {}",
            before.1,
            after.1
        );
        eprintln!(
            "rabbitmq {fault}: new leader after {:.2} s, publish gap {:.2} s, ok {}, unknown {} ({} found), duplicates {}, reintegration {:?} s",
            ms / 1000.0,
            m["write_gap_ms"].as_f64().unwrap() / 1000.0,
            m["ok"],
            m["unknown"],
            m["recovered"],
            m["duplicates"],
            m["reintegration_ms"].as_f64().map(|r| r / 1000.0)
        );
        assert!(ledger().is_empty(), "{fault}: {:?}", ledger());
        doctor_clean(Duration::from_secs(90));
    }
    kbz_ok(&["lab", "down"]);
}

fn leader_and_term() -> (String, u64) {
    let v: serde_json::Value =
        serde_json::from_str(&kbz_ok(&["--lab", "status", "rabbitmq", "--json"])).unwrap();
    (
        v[0]["leader"].as_str().unwrap().to_string(),
        v[0]["epoch"].as_u64().unwrap(),
    )
}

/// One failover test on the leader's node, with `--json`: its report (the first run) and
/// the human progress (stderr: stdout holds the JSON document alone, the same as the file).
fn failover(fault: &str) -> (serde_json::Value, String) {
    let md = state_home().join(format!("rabbitmq-failover/{fault}.md"));
    let md_s = md.display().to_string();
    let out = kbz(&[
        "--lab", "failover", "rabbitmq", "--fault", fault, "--yes", "--json", "--report", &md_s,
    ]);
    let human = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{fault}: stdout is not one JSON document ({e}):\n{human}"));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(md.with_extension("json"))
            .unwrap_or_else(|e| panic!("{fault}: no JSON report ({e}):\n{human}")),
    )
    .unwrap();
    assert_eq!(stdout, json, "{fault}: --json and the report file differ");
    (json["runs"][0]["report"].clone(), human)
}
