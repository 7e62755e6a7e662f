//! The console as a person sees it: a tmux session, keys sent to it, its screen read back.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    pub session: &'static str,
}

impl Tmux {
    /// A new session running a plain shell (any old one of the same name is ended first).
    pub fn start(session: &'static str, cols: u16, rows: u16) -> Tmux {
        let t = Tmux { session };
        let _ = t.run(&["kill-session", "-t", session]);
        t.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            "bash --norc --noprofile",
        ]);
        t
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux (apt-get install -y tmux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", self.session])
    }

    /// The terminal is in the alternate screen (a full-screen program has it).
    pub fn alternate(&self) -> bool {
        self.run(&[
            "display-message",
            "-p",
            "-t",
            self.session,
            "#{alternate_on}",
        ])
        .trim()
            == "1"
    }

    pub fn wait(&self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            let s = self.screen();
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

    pub fn kill(&self) {
        let _ = self.run(&["kill-session", "-t", self.session]);
    }
}

/// The pid of the newest console a test started with `console_line`.
pub fn console_pid() -> i32 {
    let out = Command::new("pgrep")
        .args(["-n", "-f", &format!("{} --lab", env!("CARGO_BIN_EXE_kbz"))])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the console's pid")
}

/// The shell line that starts the console on the lab with the tests' state and config.
pub fn console_line(echo_exit: bool) -> String {
    format!(
        "XDG_STATE_HOME={} XDG_CONFIG_HOME={} {} --lab{}",
        super::state_home().display(),
        super::config_home().display(),
        env!("CARGO_BIN_EXE_kbz"),
        if echo_exit { "; echo KBZ-EXIT-$?" } else { "" }
    )
}
