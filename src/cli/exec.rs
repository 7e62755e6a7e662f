//! `kbz exec SELECTOR -- CMD...`: one command on many hosts at once, output prefixed by host,
//! then a summary; `--json` for scripts. A host that cannot be reached fails fast with its
//! reason and holds up nobody.

use super::Global;
use super::remote::{Painter, fleet_and_pool, runtime};
use crate::inventory::select;
use crate::ssh::{ExecEvent, ExecSpec, Exit, LineBuffer, Payload, Stream};
use color_eyre::eyre::{Result, eyre};
use serde_json::json;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::sync::watch;

struct HostResult {
    host: String,
    exit: Option<Exit>,
    error: Option<String>,
    duration: Duration,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

pub fn run(
    global: &Global,
    selector: &str,
    command: &[String],
    json: bool,
    sudo: bool,
) -> Result<ExitCode> {
    let (fleet, pool) = fleet_and_pool(global)?;
    let hosts = select(&fleet, selector).map_err(|e| eyre!(e))?;
    let spec = ExecSpec {
        payload: Payload::Command(command.join(" ")),
        sudo,
    };
    let width = hosts.iter().map(|h| h.hostname.len()).max().unwrap_or(0);
    let painter = Painter::for_stdout();
    let rt = runtime()?;
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = interrupted.clone();
    let results: Vec<HostResult> = rt.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("kbz: interrupted: stopping the remote commands");
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = stop_tx.send(true);
            }
        });
        let tasks: Vec<_> = hosts
            .iter()
            .map(|h| {
                let pool = pool.clone();
                let target = pool.target(h);
                let spec = spec.clone();
                let name = h.hostname.clone();
                let prefix = painter.host(&h.hostname, width);
                let mut stop = stop_rx.clone();
                tokio::spawn(async move {
                    let start = Instant::now();
                    let mut r = HostResult {
                        host: name.clone(),
                        exit: None,
                        error: None,
                        duration: Duration::ZERO,
                        stdout: Vec::new(),
                        stderr: Vec::new(),
                    };
                    let mut exec = match pool.exec(&target, &spec).await {
                        Ok(e) => e,
                        Err(state) => {
                            r.error = Some(state.explain(&name));
                            r.duration = start.elapsed();
                            return r;
                        }
                    };
                    let (mut out_lines, mut err_lines) =
                        (LineBuffer::default(), LineBuffer::default());
                    loop {
                        let event = tokio::select! {
                            e = exec.next() => e,
                            // Once the stop is seen (or its sender gone), wait for the exit.
                            Ok(()) = stop.changed(), if !*stop.borrow() => { exec.cancel(); continue; }
                        };
                        match event {
                            Some(ExecEvent::Data(stream, data)) => {
                                if json {
                                    match stream {
                                        Stream::Stdout => r.stdout.extend_from_slice(&data),
                                        Stream::Stderr => r.stderr.extend_from_slice(&data),
                                    }
                                } else {
                                    let lines = match stream {
                                        Stream::Stdout => out_lines.push(&data),
                                        Stream::Stderr => err_lines.push(&data),
                                    };
                                    print_lines(&prefix, stream, lines);
                                }
                            }
                            Some(ExecEvent::Exit { exit, duration }) => {
                                if !json {
                                    print_lines(
                                        &prefix,
                                        Stream::Stdout,
                                        out_lines.finish().into_iter().collect(),
                                    );
                                    print_lines(
                                        &prefix,
                                        Stream::Stderr,
                                        err_lines.finish().into_iter().collect(),
                                    );
                                }
                                r.exit = Some(exit);
                                let _ = duration;
                                r.duration = start.elapsed();
                                return r;
                            }
                            None => {
                                r.error = Some(
                                    "the command's output stream ended without an exit".into(),
                                );
                                r.duration = start.elapsed();
                                return r;
                            }
                        }
                    }
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            if let Ok(r) = t.await {
                results.push(r);
            }
        }
        results
    });
    let failed = results
        .iter()
        .filter(|r| !r.exit.as_ref().is_some_and(Exit::success))
        .count();
    if json {
        let list: Vec<_> = results
            .iter()
            .map(|r| {
                json!({
                    "host": r.host,
                    "exit": r.exit.as_ref().map(|e| match e { Exit::Code(c) => json!(c), other => json!(other) }),
                    "ok": r.exit.as_ref().is_some_and(Exit::success),
                    "duration_ms": (r.duration.as_secs_f64() * 1000.0).round(),
                    "stdout": String::from_utf8_lossy(&r.stdout),
                    "stderr": String::from_utf8_lossy(&r.stderr),
                    "error": r.error,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string(&list)?);
    } else {
        summary(&results, width, &painter);
    }
    Ok(if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        ExitCode::from(130)
    } else if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_lines(prefix: &str, stream: Stream, lines: Vec<String>) {
    for l in lines {
        match stream {
            Stream::Stdout => outln!("{prefix} | {l}"),
            Stream::Stderr => eprintln!("{prefix} ! {l}"),
        }
    }
}

fn summary(results: &[HostResult], width: usize, painter: &Painter) {
    let width = width.max(4);
    eprintln!();
    eprintln!("{:width$}  {:>6}  {:>8}", "HOST", "EXIT", "TIME");
    for r in results {
        let exit = match (&r.exit, &r.error) {
            (Some(Exit::Code(c)), _) => c.to_string(),
            (Some(Exit::Signal(s)), _) => format!("sig {s}"),
            (Some(Exit::Cancelled), _) => "cancel".into(),
            (Some(Exit::Lost(_)), _) | (None, _) => "-".into(),
        };
        let mut line = format!(
            "{:width$}  {:>6}  {:>7.2}s",
            r.host,
            exit,
            r.duration.as_secs_f64()
        );
        if let Some(e) = &r.error {
            line.push_str(&format!("  {e}"));
        }
        if let Some(Exit::Lost(why)) = &r.exit {
            line.push_str(&format!("  {why}"));
        }
        let ok = r.exit.as_ref().is_some_and(Exit::success);
        eprintln!("{}", if ok { line } else { painter.bad(&line) });
    }
    let ok = results
        .iter()
        .filter(|r| r.exit.as_ref().is_some_and(Exit::success))
        .count();
    eprintln!("{ok}/{} hosts ok", results.len());
}
