//! The console as a person sees it, in tmux, against the lab: every host shows up, a host's
//! journal streams live in the log pane, a cut host's tile turns down within 5 s while the log
//! pane keeps streaming, `q` quits and the terminal is restored, ctrl-z / `fg` suspend and
//! resume, SIGTERM quits cleanly. Needs
//! root and tmux (installed by .ci/setup).

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const SESSION: &str = "kbz-e2e";

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux (apt-get install -y tmux)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screen() -> String {
    tmux(&["capture-pane", "-p", "-t", SESSION])
}

fn wait_screen(what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let s = screen();
        if f(&s) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}; screen:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn console_in_tmux_against_the_lab() {
    require_lab_prerequisites();
    kbz_ok(&["lab", "up"]);
    let _ = tmux(&["kill-session", "-t", SESSION]);
    tmux(&[
        "new-session",
        "-d",
        "-s",
        SESSION,
        "-x",
        "160",
        "-y",
        "45",
        "bash --norc --noprofile",
    ]);
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
    let cmd = format!(
        "XDG_STATE_HOME={} XDG_CONFIG_HOME={} {} --lab; echo KBZ-EXIT-$?",
        state_home().display(),
        config_home().display(),
        env!("CARGO_BIN_EXE_kbz")
    );
    tmux(&["send-keys", "-t", SESSION, &cmd, "Enter"]);
    wait_screen("redis-02's key unknown", Duration::from_secs(30), |s| {
        s.contains("14 up · 1 down") && s.contains("host key unknown (a)")
    });
    tmux(&["send-keys", "-t", SESSION, ":host redis-02", "Enter", "a"]);
    wait_screen("the fingerprint", Duration::from_secs(3), |s| {
        s.contains("accept redis-02's host key") && s.contains("SHA256:")
    });
    tmux(&["send-keys", "-t", SESSION, "y"]);
    wait_screen("all 15 lab hosts up", Duration::from_secs(30), |s| {
        s.contains("15 up · 0 down")
    });
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(
        recorded.lines().any(|l| l.starts_with("redis-02,")),
        "key recorded"
    );
    tmux(&["send-keys", "-t", SESSION, ":host db-master-01", "Enter"]);

    // The first host's journal in the log pane; a line written there appears live.
    tmux(&["send-keys", "-t", SESSION, "Enter"]);
    wait_screen("the log pane", Duration::from_secs(10), |s| {
        s.contains("db-master-01 · journal · following")
    });
    let hosts = lab_hosts();
    let db = ip_of(&hosts, "db-master-01");
    assert!(
        openssh(&db, "logger -t kbz-e2e first-line-from-the-lab", 5)
            .status
            .success()
    );
    wait_screen("the logger line", Duration::from_secs(5), |s| {
        s.contains("kbz-e2e[") && s.contains("first-line-from-the-lab")
    });
    // Search it: the view stops following and the search shows in the pane's title; G
    // follows again, Esc gives the keys back to the grid.
    tmux(&[
        "send-keys",
        "-t",
        SESSION,
        "Tab",
        "/",
        "first-line",
        "Enter",
    ]);
    wait_screen("the search", Duration::from_secs(3), |s| {
        s.contains("PAUSED") && s.contains("/first-line ") && s.contains("first-line-from-the-lab")
    });
    tmux(&["send-keys", "-t", SESSION, "G", "Escape"]);
    wait_screen("following again", Duration::from_secs(3), |s| {
        s.contains("db-master-01 · journal · following")
    });

    kbz_ok(&["lab", "fault", "queue-01", "cut"]);
    let took = wait_screen("queue-01 down", Duration::from_secs(5), |s| {
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
    wait_screen("the second logger line", Duration::from_secs(5), |s| {
        s.contains("second-line-while-queue-01-is-cut")
    });
    kbz_ok(&["lab", "fault", "queue-01", "restore"]);
    wait_screen("queue-01 back up", Duration::from_secs(15), |s| {
        s.contains("15 up · 0 down")
    });

    // A confirmed command: its output in the pane, its exit in the command log.
    tmux(&[
        "send-keys",
        "-t",
        SESSION,
        ":run echo ran-on-$(hostname)",
        "Enter",
    ]);
    wait_screen("the confirmation", Duration::from_secs(3), |s| {
        s.contains("run on db-master-01") && s.contains("do it")
    });
    tmux(&["send-keys", "-t", SESSION, "y"]);
    wait_screen("the command's output", Duration::from_secs(5), |s| {
        s.contains("ran-on-db-master-01") && s.contains("ended")
    });
    tmux(&["send-keys", "-t", SESSION, "Tab", "Tab"]);
    wait_screen("the command log", Duration::from_secs(3), |s| {
        s.contains("exit 0") && s.contains("echo ran-on-$(hostname)")
    });
    tmux(&["send-keys", "-t", SESSION, "Escape"]);

    // Close the pane, then the rabbitmq cluster alone.
    tmux(&[
        "send-keys",
        "-t",
        SESSION,
        "x",
        ":cluster rabbitmq",
        "Enter",
    ]);
    wait_screen("the rabbitmq cluster", Duration::from_secs(3), |s| {
        s.contains("rabbitmq · RabbitMQ")
    });

    tmux(&["send-keys", "-t", SESSION, "q"]);
    wait_screen("kbz to exit", Duration::from_secs(5), |s| {
        s.contains("KBZ-EXIT-0")
    });
    assert_eq!(
        tmux(&["display-message", "-p", "-t", SESSION, "#{alternate_on}"]).trim(),
        "0",
        "terminal restored"
    );

    // ctrl-z gives the terminal back to the shell, `fg` takes it again, SIGTERM quits cleanly.
    let bin = env!("CARGO_BIN_EXE_kbz");
    let cmd = format!(
        "XDG_STATE_HOME={} XDG_CONFIG_HOME={} {bin} --lab",
        state_home().display(),
        config_home().display()
    );
    tmux(&["send-keys", "-t", SESSION, &cmd, "Enter"]);
    wait_screen("the console again", Duration::from_secs(30), |s| {
        s.contains("15 up · 0 down")
    });
    tmux(&["send-keys", "-t", SESSION, "C-z"]);
    wait_screen("the job stopped", Duration::from_secs(5), |s| {
        s.contains("Stopped")
    });
    assert_eq!(
        tmux(&["display-message", "-p", "-t", SESSION, "#{alternate_on}"]).trim(),
        "0"
    );
    tmux(&["send-keys", "-t", SESSION, "clear; fg", "Enter"]);
    wait_screen("the console resumed", Duration::from_secs(10), |s| {
        s.contains("15 up · 0 down")
    });
    assert_eq!(
        tmux(&["display-message", "-p", "-t", SESSION, "#{alternate_on}"]).trim(),
        "1"
    );
    let pid = Command::new("pgrep")
        .args(["-n", "-f", &format!("{bin} --lab")])
        .output()
        .unwrap();
    let pid: i32 = String::from_utf8_lossy(&pid.stdout)
        .trim()
        .parse()
        .expect("kbz pid");
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
    assert_eq!(
        tmux(&["display-message", "-p", "-t", SESSION, "#{alternate_on}"]).trim(),
        "0",
        "terminal restored after SIGTERM"
    );

    let _ = tmux(&["kill-session", "-t", SESSION]);
    kbz_ok(&["lab", "down"]);
}
