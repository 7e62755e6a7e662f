//! `kbz logs HOST [--unit U | --file F] [--follow] [-n N]`: a host's journal, one unit or a
//! file. A lost connection is said out loud and the stream resumes by itself, from the journal
//! cursor it had reached (nothing repeated, nothing skipped).

use super::Global;
use super::remote::{fleet_and_pool, runtime};
use crate::inventory::select;
use crate::ssh::quote::quote;
use crate::ssh::{ExecEvent, ExecSpec, Exit, LineBuffer, Stream};
use color_eyre::eyre::{Result, eyre};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub fn run(
    global: &Global,
    host: &str,
    unit: Option<&str>,
    file: Option<&str>,
    follow: bool,
    lines: u32,
) -> Result<ExitCode> {
    let (fleet, pool) = fleet_and_pool(global)?;
    let chosen = select(&fleet, host).map_err(|e| eyre!(e))?;
    let [h] = chosen.as_slice() else {
        return Err(eyre!(
            "{host:?} names {} hosts; kbz logs follows one",
            chosen.len()
        ));
    };
    let target = pool.target(h);
    let rt = runtime()?;
    rt.block_on(async {
        let mut cursor: Option<String> = None;
        let mut first = true;
        let mut lost_at: Option<Instant> = None;
        let mut backoff = Duration::from_millis(500);
        loop {
            let cmd = match file {
                Some(path) => {
                    // A file has no cursor: after a reconnect, follow from its end.
                    let n = if first { lines } else { 0 };
                    format!(
                        "tail -n {n} {} {}",
                        if follow { "-F" } else { "" },
                        quote(path)
                    )
                }
                None => journal_command(unit, follow, lines, cursor.as_deref()),
            };
            let mut exec = match pool.exec(&target, &ExecSpec::command(cmd)).await {
                Ok(e) => e,
                Err(state) if follow => {
                    if lost_at.is_none() {
                        eprintln!("kbz: {host}: {} — reconnecting", state.explain(host));
                        lost_at = Some(Instant::now());
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
                Err(state) => return Err(eyre!("{host}: {}", state.explain(host))),
            };
            if let Some(t) = lost_at.take() {
                eprintln!(
                    "kbz: {host}: reconnected after {:.1} s, stream resumed",
                    t.elapsed().as_secs_f64()
                );
            }
            backoff = Duration::from_millis(500);
            first = false;
            let mut out = LineBuffer::default();
            let exit = loop {
                let event = tokio::select! {
                    e = exec.next() => e,
                    _ = tokio::signal::ctrl_c() => { exec.cancel(); return Ok(ExitCode::SUCCESS); }
                };
                match event {
                    Some(ExecEvent::Data(Stream::Stdout, data)) => {
                        for line in out.push(&data) {
                            if file.is_some() {
                                outln!("{line}");
                            } else if let Some((text, c)) = journal_line(&line) {
                                outln!("{text}");
                                cursor = Some(c);
                            }
                        }
                    }
                    Some(ExecEvent::Data(Stream::Stderr, data)) => {
                        eprint!("{}", String::from_utf8_lossy(&data));
                    }
                    Some(ExecEvent::Exit { exit, .. }) => break exit,
                    None => break Exit::Lost("stream ended".into()),
                }
            };
            match exit {
                Exit::Lost(why) if follow => {
                    eprintln!("kbz: {host}: stream lost ({why}) — reconnecting");
                    lost_at = Some(Instant::now());
                }
                Exit::Code(0) if !follow => return Ok(ExitCode::SUCCESS),
                Exit::Code(c) => return Err(eyre!("{host}: the log command exited with {c}")),
                Exit::Signal(_) | Exit::Cancelled if !follow => return Ok(ExitCode::FAILURE),
                other if follow => {
                    eprintln!("kbz: {host}: stream ended ({other:?}) — reconnecting");
                    lost_at = Some(Instant::now());
                }
                _ => return Ok(ExitCode::FAILURE),
            }
        }
    })
}

/// journalctl in JSON, so each entry carries its cursor; after a reconnect, resume right
/// after the last entry shown.
fn journal_command(unit: Option<&str>, follow: bool, lines: u32, cursor: Option<&str>) -> String {
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
fn journal_line(json: &str) -> Option<(String, String)> {
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
