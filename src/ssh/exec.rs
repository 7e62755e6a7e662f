//! Running commands and scripts on a host with streamed output and a cancel that really stops
//! the remote process.
//!
//! Why a wrapper: without a PTY, closing an SSH channel leaves the remote command running,
//! and OpenSSH refuses `signal()` for root logins (both measured). A PTY would merge stderr
//! into stdout. So every command runs under a small bash wrapper that starts it in its own
//! session (process group) and watches the channel's stdin as a lifeline: when kbz closes the
//! channel (cancel) or the connection dies, stdin reaches EOF and the wrapper kills the whole
//! group. Scripts are sent on the same stdin, length-prefixed, before it becomes the lifeline.

use super::client::ConnState;
use super::pool::Pool;
use super::quote::quote;
use super::target::Target;
use bytes::Bytes;
use russh::ChannelMsg;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

// The lifeline watcher runs in its own session so the wrapper can kill it (and its `cat`)
// when the command ends; `wait -n` is not used: a command that ends before `wait -n` starts
// is "no such job" to it, and the wrapper would then wait for the lifeline forever.
const WRAPPER: &str = r#"exec 3<&0 </dev/null
if [ "$1" = script ]; then
  s=$(head -c "$2" <&3; printf x); s=${s%x}; shift 2
  setsid bash -c "$s" kbz-script "$@" 3<&- & p=$!
else
  setsid bash -c "$2" 3<&- & p=$!
fi
setsid sh -c 'cat >/dev/null; kill -TERM -- -"$1" || kill -TERM "$1"; sleep 0.5; kill -KILL -- -"$1"' kbz-lifeline "$p" <&3 >/dev/null 2>&1 3<&- & w=$!
exec 3<&-
wait "$p"; st=$?
kill -- -"$w" 2>/dev/null || kill "$w" 2>/dev/null
exit "$st""#;

/// What to run.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A shell command line, as `ssh host CMD` would run it.
    Command(String),
    /// A bash script sent on stdin (nothing copied to the host first), with its arguments.
    Script { body: String, args: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub payload: Payload,
    /// Run as root through `sudo -n` (for a non-root USER_SSH).
    pub sudo: bool,
}

impl ExecSpec {
    pub fn command(cmd: impl Into<String>) -> ExecSpec {
        ExecSpec {
            payload: Payload::Command(cmd.into()),
            sudo: false,
        }
    }

    /// What the command log shows: the command asked for, not the wrapper around it.
    pub fn summary(&self) -> String {
        let sudo = if self.sudo { "sudo " } else { "" };
        match &self.payload {
            Payload::Command(c) => format!("{sudo}{c}"),
            Payload::Script { body, args } => {
                let mut s = format!("{sudo}bash script ({} bytes)", body.len());
                for a in args {
                    s.push(' ');
                    s.push_str(&quote(a));
                }
                s
            }
        }
    }

    /// The exact command line sent to the host.
    pub fn remote_command(&self) -> String {
        let mut words = vec![quote("kbz-run")];
        match &self.payload {
            Payload::Command(c) => {
                words.push("cmd".into());
                words.push(quote(c));
            }
            Payload::Script { body, args } => {
                words.push("script".into());
                words.push(body.len().to_string());
                words.extend(args.iter().map(|a| quote(a)));
            }
        }
        let run = format!("bash -c {} {}", quote(WRAPPER), words.join(" "));
        if self.sudo {
            format!("sudo -n -- {run}")
        } else {
            run
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exit {
    Code(u32),
    Signal(String),
    /// Cancelled by kbz: the remote process group was killed.
    Cancelled,
    /// The connection was lost before the command said how it ended.
    Lost(String),
}

impl Exit {
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

#[derive(Debug, Clone)]
pub enum ExecEvent {
    Data(Stream, Bytes),
    Exit { exit: Exit, duration: Duration },
}

/// A running command. Dropping it cancels the command. (The event queue is private on
/// purpose: moving it out alone would drop the rest, and so cancel the command.)
pub struct Exec {
    events: mpsc::UnboundedReceiver<ExecEvent>,
    cancel: Option<oneshot::Sender<()>>,
}

impl Exec {
    /// The next output chunk or the exit; `None` after the exit.
    pub async fn next(&mut self) -> Option<ExecEvent> {
        self.events.recv().await
    }

    /// Stops the remote command (its whole process group); the last event is
    /// `Exit::Cancelled`.
    pub fn cancel(&mut self) {
        if let Some(c) = self.cancel.take() {
            let _ = c.send(());
        }
    }
}

impl Pool {
    /// Starts `spec` on `target`. Output is drained at once by its own task (in russh one
    /// unread channel stalls every channel of its connection) into an unbounded queue that
    /// the caller reads at its pace.
    pub async fn exec(&self, target: &Target, spec: &ExecSpec) -> Result<Exec, ConnState> {
        self.exec_logged(target, spec, true).await
    }

    /// `exec` for the console's own background probes, kept out of the command log: several
    /// a second would push every command an operator ran out of it.
    pub async fn exec_unlogged(&self, target: &Target, spec: &ExecSpec) -> Result<Exec, ConnState> {
        self.exec_logged(target, spec, false).await
    }

    /// A probe's stdout (stderr dropped, kept out of the command log), or why not: the host
    /// unreachable, or `what` took over `limit`.
    pub async fn probe_stdout(
        &self,
        target: &Target,
        command: String,
        limit: Duration,
        what: &str,
    ) -> Result<String, String> {
        let mut exec = self
            .exec_unlogged(target, &ExecSpec::command(command))
            .await
            .map_err(|s| s.explain(&target.alias))?;
        let mut out = Vec::new();
        let read = async {
            while let Some(ev) = exec.next().await {
                match ev {
                    ExecEvent::Data(Stream::Stdout, d) => out.extend_from_slice(&d),
                    ExecEvent::Data(Stream::Stderr, _) => {}
                    ExecEvent::Exit { .. } => break,
                }
            }
        };
        tokio::time::timeout(limit, read)
            .await
            .map_err(|_| format!("{}: {what} took over {} s", target.alias, limit.as_secs()))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    async fn exec_logged(
        &self,
        target: &Target,
        spec: &ExecSpec,
        logged: bool,
    ) -> Result<Exec, ConnState> {
        let lease = self.lease(target).await?;
        let lost = |e: russh::Error| ConnState::Down {
            reason: format!("channel: {e}"),
        };
        let mut ch = match lease.conn.channel_open_session().await {
            Ok(ch) => ch,
            Err(e) => {
                self.lost(target, &e.to_string());
                return Err(lost(e));
            }
        };
        ch.exec(true, spec.remote_command()).await.map_err(lost)?;
        if let Payload::Script { body, .. } = &spec.payload {
            ch.data(body.as_bytes()).await.map_err(lost)?;
        }
        let id = logged.then(|| self.command_started(&target.alias, spec.summary()));
        let (tx, rx) = mpsc::unbounded_channel();
        let (cancel_tx, mut cancel_rx) = oneshot::channel::<()>();
        let pool = self.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let _permit = lease.permit;
            let start = Instant::now();
            let mut exit: Option<Exit> = None;
            loop {
                tokio::select! {
                    msg = ch.wait() => match msg {
                        Some(ChannelMsg::Data { data }) => {
                            let _ = tx.send(ExecEvent::Data(Stream::Stdout, data));
                        }
                        Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                            let _ = tx.send(ExecEvent::Data(Stream::Stderr, data));
                        }
                        Some(ChannelMsg::ExitStatus { exit_status }) => exit = Some(Exit::Code(exit_status)),
                        Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                            exit = Some(Exit::Signal(format!("{signal_name:?}")));
                        }
                        Some(ChannelMsg::Close) | None => break,
                        Some(_) => {}
                    },
                    // Cancelled, or the Exec was dropped: close the channel, which ends the
                    // wrapper's lifeline. Waiting on a channel after our own close never
                    // returns in russh, so stop reading it.
                    _ = &mut cancel_rx => {
                        let _ = ch.close().await;
                        exit = Some(Exit::Cancelled);
                        break;
                    }
                }
            }
            let exit = exit.unwrap_or_else(|| {
                let reason = "connection lost before the command ended".to_string();
                pool.lost(&target, &reason);
                Exit::Lost(reason)
            });
            if let Some(id) = id {
                pool.command_ended(id, &exit, start.elapsed());
            }
            let _ = tx.send(ExecEvent::Exit {
                exit,
                duration: start.elapsed(),
            });
        });
        Ok(Exec {
            events: rx,
            cancel: Some(cancel_tx),
        })
    }
}

/// Splits a byte stream into lines (the data arrives in arbitrary chunks). A line longer than
/// `max` is cut, so one endless line cannot hold memory hostage.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
}

impl LineBuffer {
    const MAX: usize = 64 * 1024;

    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in data {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.buf);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                lines.push(String::from_utf8_lossy(&line).into_owned());
            } else {
                self.buf.push(b);
                if self.buf.len() >= Self::MAX {
                    lines
                        .push(String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned());
                }
            }
        }
        lines
    }

    /// What is left after the last newline, when the stream ends.
    pub fn finish(&mut self) -> Option<String> {
        (!self.buf.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_chunks() {
        let mut lb = LineBuffer::default();
        assert!(lb.push(b"hel").is_empty());
        assert_eq!(lb.push(b"lo\r\nwor"), ["hello"]);
        assert_eq!(lb.push(b"ld\n\nx"), ["world", ""]);
        assert_eq!(lb.finish().as_deref(), Some("x"));
        assert_eq!(lb.finish(), None);
        let long = vec![b'a'; LineBuffer::MAX + 10];
        let out = lb.push(&long);
        assert_eq!(out.len(), 1);
        assert_eq!(lb.finish().map(|s| s.len()), Some(10));
    }

    /// The wrapper, run by a local bash exactly as sshd would: the command's output and exit
    /// status pass through, a script arrives intact on stdin with its arguments, and closing
    /// stdin kills the command's whole process group.
    #[test]
    fn wrapper_runs_commands_scripts_and_dies_with_its_lifeline() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let run = |spec: &ExecSpec, stdin: &[u8]| {
            let mut child = Command::new("bash")
                .arg("-c")
                .arg(spec.remote_command())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut input = child.stdin.take().unwrap();
            input.write_all(stdin).unwrap();
            drop(input);
            child.wait_with_output().unwrap()
        };
        // stdin closed at once, but a quick command finishes first... or is killed: use a
        // command that outputs before the lifeline check can matter.
        let out = run(&ExecSpec::command("echo out; echo err >&2; exit 3"), b"");
        let code = out.status.code();
        assert!(code == Some(3) || code == Some(143), "{out:?}");

        let script = "echo \"args: $*\"; echo 'it''s'; exit 0\n";
        let spec = ExecSpec {
            payload: Payload::Script {
                body: script.into(),
                args: vec!["a b".into(), "$(id)".into()],
            },
            sudo: false,
        };
        // Keep stdin open (as kbz does) until the script is done: feed the body, then close
        // after a moment.
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(spec.remote_command())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(script.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        drop(input);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "args: a b $(id)\nits\n"
        );
        assert_eq!(out.status.code(), Some(0));

        // Lifeline: a long command with its children dies when stdin closes.
        let marker = format!("kbz-lifeline-{}", std::process::id());
        let spec = ExecSpec::command(format!("sleep 300 & sleep 301; : {marker}"));
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(spec.remote_command())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let alive = |pat: &str| {
            Command::new("pgrep")
                .args(["-f", pat])
                .output()
                .unwrap()
                .status
                .success()
        };
        assert!(alive(&marker), "the command runs");
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(143));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!alive(&marker), "the command's process group is gone");
    }
}
