//! One long-lived shell per host that answers kbz's questions about the host with shell
//! builtins and reads of `/proc`: asked every few seconds, it starts no process. Only what
//! has no `/proc` file (disk use, failed units, NTP state) runs commands, at most every
//! `SLOW_EVERY`. The shell ends with its channel: when kbz closes it or the connection
//! drops, its stdin reaches EOF and its `read` loop returns.

use crate::probe::host::{HostBasics, parse};
use crate::ssh::{Pool, Target};
use russh::ChannelMsg;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::OwnedSemaphorePermit;

/// Commands for what `/proc` does not say (disk use, failed units): two processes a host this
/// often, no more (measured: every 30 s with `timedatectl` cost the 15-host lab 1.8 process
/// creations a second, `timedatectl` waking systemd-timedated each time).
pub const SLOW_EVERY: Duration = Duration::from_secs(60);

const END: &str = "::kbz-end";

// `f` answers with builtins only (read, printf, $EPOCHREALTIME): the clock first, so its
// uncertainty is the round trip of the question. `a` lists the host's own IPv4 addresses
// (the LOCAL /32 entries of the routing trie), builtins only too. `s` runs the commands; NTP
// is timesyncd's flag file (present once synchronized), not `timedatectl`. Sections as in
// probe::host::COMMAND, so one parser reads both.
const SCRIPT: &str = r#"exec 2>/dev/null
while read -r q; do
  case $q in
  f)
    printf '%s\n::kbz-section\n' "${EPOCHREALTIME/,/.}"
    read -r l < /proc/loadavg; printf '%s\n' "$l"
    n=0; while read -r k _; do case $k in cpu[0-9]*) n=$((n+1));; esac; done < /proc/stat
    printf '%s\n::kbz-section\n' "$n"
    while read -r k v _; do case $k in MemTotal:|MemAvailable:) printf '%s %s kB\n' "$k" "$v";; esac; done < /proc/meminfo
    printf '::kbz-end\n';;
  a)
    p=; while read -r x y _; do case $x in '|--') p=$y;; /32) [ "$y" = host ] && printf '%s\n' "$p";; esac; done < /proc/net/fib_trie
    printf '::kbz-end\n';;
  s)
    df -P -k / /var/lib; printf '::kbz-section\n'
    systemctl list-units --state=failed --plain --no-legend --no-pager; printf '::kbz-section\n'
    [ -e /run/systemd/timesync/synchronized ] && printf 'yes'; printf '\n::kbz-end\n';;
  esac
done"#;

pub struct Shell {
    pool: Pool,
    target: Target,
    /// The shell's channel, with the pool's permit for it: a session channel for as long as
    /// the shell lives.
    channel: Option<(russh::Channel<russh::client::Msg>, OwnedSemaphorePermit)>,
    /// The last answer to `s`, and when it came.
    slow: Option<(String, Instant)>,
}

impl Drop for Shell {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shell {
    /// Ends the shell: EOF on its stdin ends its loop (a dropped channel alone may not).
    fn close(&mut self) {
        if let Some((ch, permit)) = self.channel.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = ch.eof().await;
                let _ = ch.close().await;
                drop(permit);
            });
        }
    }

    pub fn new(pool: &Pool, target: Target) -> Shell {
        Shell {
            pool: pool.clone(),
            target,
            channel: None,
            slow: None,
        }
    }

    /// The host's basics: the fast part asked now, the slow part as of `SLOW_EVERY` ago at
    /// most. Any failure drops the shell; the next call starts another.
    pub async fn basics(&mut self, timeout: Duration) -> Result<HostBasics, String> {
        let asked = tokio::time::timeout(timeout, self.basics_inner()).await;
        self.settle(asked, timeout)
    }

    /// The host's own IPv4 addresses (a floating address included while it holds it).
    pub async fn addresses(&mut self, timeout: Duration) -> Result<Vec<String>, String> {
        let asked = tokio::time::timeout(timeout, self.ask("a")).await;
        let text = self.settle(asked, timeout)?;
        let mut out: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// An answer, or why not; any failure ends the shell, so the next question starts anew.
    fn settle<T>(
        &mut self,
        asked: Result<Result<T, String>, tokio::time::error::Elapsed>,
        timeout: Duration,
    ) -> Result<T, String> {
        match asked {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) => {
                self.close();
                Err(e)
            }
            Err(_) => {
                self.close();
                Err(format!(
                    "{}: its shell did not answer within {:.0} s",
                    self.target.alias,
                    timeout.as_secs_f64()
                ))
            }
        }
    }

    async fn basics_inner(&mut self) -> Result<HostBasics, String> {
        if self
            .slow
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= SLOW_EVERY)
        {
            let text = self.ask("s").await?;
            self.slow = Some((text, Instant::now()));
        }
        let sent = SystemTime::now();
        let fast = self.ask("f").await?;
        let received = SystemTime::now();
        let slow = self.slow.as_ref().map_or("", |(t, _)| t.as_str());
        parse(&format!("{fast}\n::kbz-section\n{slow}"), sent, received)
    }

    /// Sends one question, returns the answer up to its end mark.
    async fn ask(&mut self, question: &str) -> Result<String, String> {
        if self.channel.is_none() {
            let lease = self
                .pool
                .lease(&self.target)
                .await
                .map_err(|s| s.explain(&self.target.alias))?;
            let ch = lease
                .conn
                .channel_open_session()
                .await
                .map_err(|e| format!("{}: shell: {e}", self.target.alias))?;
            ch.exec(
                true,
                format!(
                    "exec bash --noprofile --norc -c {}",
                    crate::ssh::quote::quote(SCRIPT)
                ),
            )
            .await
            .map_err(|e| format!("{}: shell: {e}", self.target.alias))?;
            self.channel = Some((ch, lease.permit));
        }
        let (ch, _) = self
            .channel
            .as_mut()
            .ok_or_else(|| format!("{}: shell not started", self.target.alias))?;
        ch.data(format!("{question}\n").as_bytes())
            .await
            .map_err(|e| format!("{}: shell: {e}", self.target.alias))?;
        let mut out = Vec::new();
        loop {
            match ch.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    out.extend_from_slice(&data);
                    if out.ends_with(format!("{END}\n").as_bytes()) {
                        let text = String::from_utf8_lossy(&out);
                        return Ok(text.trim_end_matches(&format!("{END}\n")).to_string());
                    }
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. })
                | None => {
                    return Err(format!("{}: the shell ended", self.target.alias));
                }
                Some(_) => {}
            }
        }
    }
}
