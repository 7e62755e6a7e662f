//! The console as a person sees it, in tmux, against the lab: every host shows up, a host's
//! journal streams live in the log pane, a cut host's tile turns down within 5 s while the log
//! pane keeps streaming, `q` quits and the terminal is restored, ctrl-z / `fg` suspend and
//! resume, SIGTERM quits cleanly. Needs
//! root and tmux (installed by .ci/setup).

mod common;
use common::tmux::{Tmux, console_line, console_pid};
use common::*;
use std::time::{Duration, Instant};

#[test]
fn console_in_tmux_against_the_lab() {
    require_lab_prerequisites();
    kbz_ok(&["lab", "up"]);
    let t = Tmux::start("kbz-e2e", 160, 45);
    // One host's key is missing from known_hosts: the console says so and, once the operator
    // has seen the fingerprint and accepted it, records it and connects.
    let known = state_home().join("kbz/lab/known_hosts");
    let full = std::fs::read_to_string(&known).expect("the lab's known_hosts");
    let without: String = full
        .lines()
        .filter(|l| !l.starts_with("redis-02,"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(full, without, "redis-02 is in the lab's known_hosts");
    std::fs::write(&known, without).unwrap();
    t.keys(&[&console_line(true), "Enter"]);
    t.wait("redis-02's key unknown", Duration::from_secs(30), |s| {
        s.contains("14 up · 1 down") && s.contains("host key unknown (a)")
    });
    t.keys(&[":host redis-02", "Enter", "a"]);
    t.wait("the fingerprint", Duration::from_secs(3), |s| {
        s.contains("accept redis-02's host key") && s.contains("SHA256:")
    });
    t.keys(&["y"]);
    t.wait("all 15 lab hosts up", Duration::from_secs(30), |s| {
        s.contains("15 up · 0 down")
    });
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(
        recorded.lines().any(|l| l.starts_with("redis-02,")),
        "key recorded"
    );
    t.keys(&[":host db-master-01", "Enter"]);

    // The first host's journal in the log pane; a line written there appears live.
    t.keys(&["Enter"]);
    t.wait("the log pane", Duration::from_secs(10), |s| {
        s.contains("db-master-01 · journal · following")
    });
    let hosts = lab_hosts();
    let db = ip_of(&hosts, "db-master-01");
    assert!(
        openssh(&db, "logger -t kbz-e2e first-line-from-the-lab", 5)
            .status
            .success()
    );
    t.wait("the logger line", Duration::from_secs(5), |s| {
        s.contains("kbz-e2e[") && s.contains("first-line-from-the-lab")
    });
    // Search it: the view stops following and the search shows in the pane's title; G
    // follows again, Esc gives the keys back to the grid.
    t.keys(&["Tab", "/", "first-line", "Enter"]);
    t.wait("the search", Duration::from_secs(3), |s| {
        s.contains("PAUSED") && s.contains("/first-line ") && s.contains("first-line-from-the-lab")
    });
    t.keys(&["G", "Escape"]);
    t.wait("following again", Duration::from_secs(3), |s| {
        s.contains("db-master-01 · journal · following")
    });

    kbz_ok(&["lab", "fault", "queue-01", "cut"]);
    let took = t.wait("queue-01 down", Duration::from_secs(5), |s| {
        s.contains("14 up · 1 down") && s.contains("down: no answer")
    });
    eprintln!("cut seen on screen after {took:?}");
    // The log pane keeps streaming while another host is cut off.
    assert!(
        openssh(
            &db,
            "logger -t kbz-e2e second-line-while-queue-01-is-cut",
            5
        )
        .status
        .success()
    );
    t.wait("the second logger line", Duration::from_secs(5), |s| {
        s.contains("second-line-while-queue-01-is-cut")
    });
    kbz_ok(&["lab", "fault", "queue-01", "restore"]);
    t.wait("queue-01 back up", Duration::from_secs(15), |s| {
        s.contains("15 up · 0 down")
    });

    // A confirmed command: its output in the pane, its exit in the command log.
    t.keys(&[":run echo ran-on-$(hostname)", "Enter"]);
    t.wait("the confirmation", Duration::from_secs(3), |s| {
        s.contains("run on db-master-01") && s.contains("do it")
    });
    t.keys(&["y"]);
    t.wait("the command's output", Duration::from_secs(5), |s| {
        s.contains("ran-on-db-master-01") && s.contains("ended")
    });
    t.keys(&["Tab", "Tab"]);
    t.wait("the command log", Duration::from_secs(3), |s| {
        s.contains("exit 0") && s.contains("echo ran-on-$(hostname)")
    });
    t.keys(&["Escape"]);

    // Close the pane, then the rabbitmq cluster alone.
    t.keys(&["x", ":cluster rabbitmq", "Enter"]);
    t.wait("the rabbitmq cluster", Duration::from_secs(3), |s| {
        s.contains("rabbitmq · RabbitMQ")
    });

    t.keys(&["q"]);
    t.wait("kbz to exit", Duration::from_secs(5), |s| {
        s.contains("KBZ-EXIT-0")
    });
    assert!(!t.alternate(), "terminal restored");

    // ctrl-z gives the terminal back to the shell, `fg` takes it again, SIGTERM quits cleanly.
    t.keys(&[&console_line(false), "Enter"]);
    t.wait("the console again", Duration::from_secs(30), |s| {
        s.contains("15 up · 0 down")
    });
    t.keys(&["C-z"]);
    t.wait("the job stopped", Duration::from_secs(5), |s| {
        s.contains("Stopped")
    });
    assert!(!t.alternate());
    t.keys(&["clear; fg", "Enter"]);
    t.wait("the console resumed", Duration::from_secs(10), |s| {
        s.contains("15 up · 0 down")
    });
    assert!(t.alternate());
    let pid = console_pid();
    // SAFETY: signals the kbz this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "kbz did not end on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!t.alternate(), "terminal restored after SIGTERM");

    t.kill();
    kbz_ok(&["lab", "down"]);
}
