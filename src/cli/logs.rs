//! `kbz logs HOST [--unit U | --file F] [--follow] [-n N]`: prints an engine log stream.

use super::Global;
use super::remote::{fleet_and_pool, runtime};
use crate::engine::logs::{LogEvent, LogSource, stream};
use crate::inventory::select;
use color_eyre::eyre::{Result, eyre};
use std::process::ExitCode;

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
    let source = match file {
        Some(path) => LogSource::File {
            path: path.to_string(),
        },
        None => LogSource::Journal {
            unit: unit.map(String::from),
        },
    };
    runtime()?.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(stream(pool, target, source, follow, lines, tx));
        let result = loop {
            let event = tokio::select! {
                e = rx.recv() => e,
                _ = tokio::signal::ctrl_c() => break Ok(ExitCode::SUCCESS),
            };
            match event {
                Some(LogEvent::Line(l)) => outln!("{l}"),
                Some(LogEvent::Warning(w)) => eprintln!("{host}: {w}"),
                Some(LogEvent::Lost(why)) => {
                    eprintln!("kbz: {host}: stream lost ({why}) — reconnecting")
                }
                Some(LogEvent::Resumed(after)) => {
                    eprintln!(
                        "kbz: {host}: reconnected after {:.1} s, stream resumed",
                        after.as_secs_f64()
                    )
                }
                Some(LogEvent::Ended(Ok(()))) | None => break Ok(ExitCode::SUCCESS),
                Some(LogEvent::Ended(Err(e))) => break Err(eyre!("{host}: {e}")),
            }
        };
        // Dropping the receiver ends the stream and cancels the remote command.
        drop(rx);
        let _ = task.await;
        result
    })
}
