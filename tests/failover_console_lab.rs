//! A failover test run from the console, in tmux, against the lab's real clusters: picked
//! from the cluster view, confirmed, followed live in the Failover view to its verdict and
//! report; `q` while the fault is in heals it before the console exits; a console killed
//! while the fault is in leaves it in the ledger, and the next console heals it at start.
//! Needs root (the lab) and tmux.

mod common;
use common::tmux::{Tmux, console_line, console_pid};
use common::*;
use std::time::{Duration, Instant};

/// The target from the view's title: "kill on HOST (the leader)".
fn target_of(screen: &str, fault: &str) -> String {
    let marker = format!("{fault} on ");
    let line = screen
        .lines()
        .find(|l| l.contains("FAILOVER TEST"))
        .unwrap_or_else(|| panic!("no title:\n{screen}"));
    let rest = line.split(&marker).nth(1).unwrap();
    rest.split_whitespace().next().unwrap().to_string()
}

/// `:failover CLUSTER FAULT`, confirmed with `y`, followed until the fault is in; its target.
fn failover_confirmed(t: &Tmux, cluster: &str, fault: &str, within: Duration) -> String {
    t.keys(&[&format!(":failover {cluster} {fault}"), "Enter"]);
    t.wait("the confirmation", Duration::from_secs(3), |s| {
        s.contains(&format!("failover test on {cluster}")) && s.contains("do it")
    });
    t.keys(&["y"]);
    t.wait("the fault in", within, |s| s.contains("FAULT IN"));
    target_of(&t.screen(), fault)
}

fn wait_until(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn failover_from_the_console_is_followed_live_and_always_healed() {
    require_lab_prerequisites();
    let _ = std::fs::remove_dir_all(config_home());
    kbz_ok(&["lab", "down"]);
    kbz_ok(&["lab", "up"]);
    kbz_ok(&["--lab", "install", "--from", "2", "--skip-cleanup", "--yes"]);
    let t = Tmux::start("kbz-failover", 160, 45);
    t.keys(&[&console_line(true), "Enter"]);
    t.wait("all hosts up", Duration::from_secs(30), |s| {
        s.contains("15 up · 0 down") && s.contains("leader redis-0")
    });

    // Picked from the cluster view: the leader of redis, killed.
    t.keys(&[":cluster redis", "Enter", "F"]);
    t.wait("the picker", Duration::from_secs(3), |s| {
        s.contains("failover test on redis") && s.contains("◀ kill ▶")
    });
    t.keys(&["Enter"]);
    t.wait("the confirmation", Duration::from_secs(3), |s| {
        s.contains("kill on its current leader") && s.contains("do it")
    });
    t.keys(&["y"]);
    let took = t.wait("the fault in", Duration::from_secs(20), |s| {
        s.contains("FAULT IN") && s.contains("⚡ kill")
    });
    eprintln!("fault in after {took:?}");
    assert_eq!(
        ledger().len(),
        1,
        "the fault is in the ledger while it is in"
    );
    t.wait("the new leader", Duration::from_secs(20), |s| {
        s.contains("new leader redis-0")
    });
    t.wait("the verdict", Duration::from_secs(120), |s| {
        s.contains("verdict · report")
    });
    let s = t.screen();
    assert!(s.contains("failed over from redis-0"), "{s}");
    assert!(s.contains("old leader back") || s.contains("· done"), "{s}");
    let report = s
        .lines()
        .find_map(|l| l.split("verdict · report ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    let md = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{report}: {e}"));
    assert!(md.contains("**Verdict"), "{md}");
    assert!(std::path::Path::new(&report.replace(".md", ".svg")).exists());
    assert!(std::path::Path::new(&report.replace(".md", ".json")).exists());
    assert!(ledger().is_empty(), "{:?}", ledger());
    t.keys(&["Escape"]);
    t.wait("the cluster view again", Duration::from_secs(3), |s| {
        s.contains("redis · Redis + Sentinel")
    });

    // q while PostgreSQL's leader is killed: the console heals before it exits.
    let target = failover_confirmed(&t, "postgres", "kill", Duration::from_secs(30));
    assert!(!active(&target, "patroni"), "the kill is in on {target}");
    t.keys(&["q"]);
    t.wait(
        "the console to heal and exit",
        Duration::from_secs(90),
        |s| s.contains("KBZ-EXIT-0"),
    );
    let s = t.screen();
    assert!(s.contains("healing its fault before exiting"), "{s}");
    assert!(
        s.contains("cancelled (the console quit)"),
        "the verdict says why it stopped: {s}"
    );
    assert!(s.contains("kbz: report "), "{s}");
    assert!(!t.alternate(), "terminal restored");
    assert!(active(&target, "patroni"), "{target} healed");
    assert!(ledger().is_empty(), "{:?}", ledger());

    // The console killed while Redis is stopped: the fault stays in the ledger, and the next
    // console heals it as it starts.
    t.keys(&["clear", "Enter"]);
    t.keys(&[&console_line(true), "Enter"]);
    t.wait("all hosts up", Duration::from_secs(60), |s| {
        s.contains("15 up · 0 down") && s.contains("leader redis-0")
    });
    let target = failover_confirmed(&t, "redis", "stop", Duration::from_secs(20));
    // SAFETY: kill(2) on the console this test started.
    unsafe { libc::kill(console_pid(), libc::SIGKILL) };
    t.wait("the console killed", Duration::from_secs(10), |s| {
        s.contains("KBZ-EXIT-137")
    });
    assert_eq!(ledger().len(), 1, "the ledger keeps the fault");
    assert!(!active(&target, "redis-server"), "{target} still stopped");
    // A killed program leaves its terminal raw: the operator opens another one.
    t.kill();
    let t = Tmux::start("kbz-failover-2", 160, 45);
    t.keys(&[&console_line(true), "Enter"]);
    wait_until(
        "the new console to heal the ledger",
        Duration::from_secs(30),
        || ledger().is_empty(),
    );
    assert!(active(&target, "redis-server"), "{target} healed");
    t.keys(&["Tab", "Tab", "Tab"]);
    t.wait(
        "the heal said in the diagnostics",
        Duration::from_secs(10),
        |s| s.contains(&format!("healed stop on {target}")),
    );
    // Esc gives the keys back to the grid, q quits.
    t.keys(&["Escape"]);
    t.wait("the grid's keys", Duration::from_secs(3), |s| {
        s.lines().last().is_some_and(|l| l.contains("filter hosts"))
    });
    t.keys(&["q"]);
    t.wait("kbz to exit", Duration::from_secs(10), |s| {
        s.contains("KBZ-EXIT-0")
    });
    t.kill();
    kbz_ok(&["lab", "down"]);
}
