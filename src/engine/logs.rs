//! Live log streams from hosts: a journal (all of it or one unit) or a file, followed over
//! the host's pooled connection. A lost connection is reported as such and the stream resumes
//! by itself, from the journal cursor it had reached (nothing repeated, nothing skipped), with
//! backoff. Used by `kbz logs` and by the console's log panes.

use crate::ssh::quote::quote;
use crate::ssh::{ExecEvent, ExecSpec, Exit, LineBuffer, Pool, Stream, Target};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// The whole journal, or one unit's.
    Journal {
        unit: Option<String>,
    },
    File {
        path: String,
    },
}

/// What a stream reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEvent {
    Line(String),
    /// The remote command's own complaints (stderr).
    Warning(String),
    /// The connection was lost (or never made); retrying.
    Lost(String),
    /// Streaming again after a loss, after this long.
    Resumed(Duration),
    /// A stream that does not follow has shown everything; or a follow that cannot go on.
    Ended(Result<(), String>),
}

/// Streams `source` from `target` into `tx` until the receiver is dropped, or until the end
/// when not following. Never blocks on the receiver: the queue is unbounded, the reader keeps
/// its own bounded buffer.
pub async fn stream(
    pool: Pool,
    target: Target,
    source: LogSource,
    follow: bool,
    lines: u32,
    tx: mpsc::UnboundedSender<LogEvent>,
) {
    let mut cursor: Option<String> = None;
    let mut first = true;
    let mut lost_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(500);
    loop {
        let cmd = match &source {
            // A file has no cursor: after a reconnect, follow from its end.
            LogSource::File { path } => format!(
                "tail -n {} {} {}",
                if first { lines } else { 0 },
                if follow { "-F" } else { "" },
                quote(path)
            ),
            LogSource::Journal { unit } => {
                journal_command(unit.as_deref(), follow, lines, cursor.as_deref())
            }
        };
        let mut exec = match pool.exec(&target, &ExecSpec::command(cmd)).await {
            Ok(e) => e,
            Err(state) if follow => {
                if lost_at.is_none() {
                    lost_at = Some(Instant::now());
                    if tx
                        .send(LogEvent::Lost(state.explain(&target.alias)))
                        .is_err()
                    {
                        return;
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                if tx.is_closed() {
                    return;
                }
                continue;
            }
            Err(state) => {
                let _ = tx.send(LogEvent::Ended(Err(state.explain(&target.alias))));
                return;
            }
        };
        if let Some(t) = lost_at.take() {
            log::info!(target: "logs", "{}: stream resumed after {:.1} s", target.alias, t.elapsed().as_secs_f64());
            if tx.send(LogEvent::Resumed(t.elapsed())).is_err() {
                return;
            }
        }
        backoff = Duration::from_millis(500);
        first = false;
        let mut out = LineBuffer::default();
        let exit = loop {
            let event = tokio::select! {
                e = exec.next() => e,
                // Dropping the exec cancels the remote command.
                _ = tx.closed() => return,
            };
            match event {
                Some(ExecEvent::Data(Stream::Stdout, data)) => {
                    for line in out.push(&data) {
                        let text = match &source {
                            LogSource::File { .. } => Some(line),
                            LogSource::Journal { .. } => journal_line(&line).map(|(text, c)| {
                                cursor = Some(c);
                                text
                            }),
                        };
                        if let Some(text) = text
                            && tx.send(LogEvent::Line(text)).is_err()
                        {
                            return;
                        }
                    }
                }
                Some(ExecEvent::Data(Stream::Stderr, data)) => {
                    let _ = tx.send(LogEvent::Warning(
                        String::from_utf8_lossy(&data).trim_end().to_string(),
                    ));
                }
                Some(ExecEvent::Exit { exit, .. }) => break exit,
                None => break Exit::Lost("stream ended".into()),
            }
        };
        match exit {
            Exit::Code(0) if !follow => {
                let _ = tx.send(LogEvent::Ended(Ok(())));
                return;
            }
            other if follow => {
                let why = match other {
                    Exit::Lost(why) => why,
                    other => format!("the log command ended ({other:?})"),
                };
                lost_at = Some(Instant::now());
                log::warn!(target: "logs", "{}: stream lost: {why}", target.alias);
                if tx.send(LogEvent::Lost(why)).is_err() {
                    return;
                }
            }
            other => {
                let _ = tx.send(LogEvent::Ended(Err(format!(
                    "the log command ended ({other:?})"
                ))));
                return;
            }
        }
    }
}

/// journalctl in JSON, so each entry carries its cursor; after a reconnect, resume right
/// after the last entry shown.
pub fn journal_command(
    unit: Option<&str>,
    follow: bool,
    lines: u32,
    cursor: Option<&str>,
) -> String {
    let mut cmd = String::from("journalctl --no-pager -o json");
    match cursor {
        Some(c) => cmd.push_str(&format!(" --after-cursor={}", quote(c))),
        None => cmd.push_str(&format!(" -n {lines}")),
    }
    if let Some(u) = unit {
        cmd.push_str(&format!(" -u {}", quote(u)));
    }
    if follow {
        cmd.push_str(" -f");
    }
    cmd
}

/// One journal entry as `TIME ident[pid]: message`, and its cursor.
pub fn journal_line(json: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let field = |k: &str| -> String {
        match &v[k] {
            serde_json::Value::String(s) => s.clone(),
            // Non-UTF-8 messages come as byte arrays.
            serde_json::Value::Array(bytes) => {
                let b: Vec<u8> = bytes
                    .iter()
                    .filter_map(|x| x.as_u64().map(|n| n as u8))
                    .collect();
                String::from_utf8_lossy(&b).into_owned()
            }
            _ => String::new(),
        }
    };
    let cursor = field("__CURSOR");
    let micros: u64 = field("__REALTIME_TIMESTAMP").parse().ok()?;
    let ident = match field("SYSLOG_IDENTIFIER") {
        s if s.is_empty() => field("_COMM"),
        s => s,
    };
    let pid = field("_PID");
    let who = if pid.is_empty() {
        ident
    } else {
        format!("{ident}[{pid}]")
    };
    Some((
        format!("{} {who}: {}", utc(micros), field("MESSAGE")),
        cursor,
    ))
}

/// `utc` of a wall-clock time.
pub fn utc_at(t: std::time::SystemTime) -> String {
    utc(t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64))
}

/// `utc` of now.
pub fn utc_now() -> String {
    utc_at(std::time::SystemTime::now())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from microseconds since the epoch (days-to-civil conversion).
pub fn utc(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        (micros % 1_000_000) / 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_795_824_000_123_456), "2026-11-28T00:00:00.123Z");
        assert_eq!(utc(951_782_400_000_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn journal_entries() {
        let line = r#"{"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1795824000123456","SYSLOG_IDENTIFIER":"kbz-test","_PID":"42","MESSAGE":"hello"}"#;
        let (text, cursor) = journal_line(line).unwrap();
        assert_eq!(text, "2026-11-28T00:00:00.123Z kbz-test[42]: hello");
        assert_eq!(cursor, "s=abc;i=1");
        let bytes = r#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"0","MESSAGE":[104,105,255]}"#;
        assert!(journal_line(bytes).unwrap().0.ends_with(": hi\u{fffd}"));
        assert!(
            journal_command(Some("redis-server.service"), true, 5, Some("s=x;i=2"))
                .contains("--after-cursor='s=x;i=2' -u redis-server.service -f")
        );
    }
}
