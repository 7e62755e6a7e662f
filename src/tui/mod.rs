//! The full-screen console (`kbz` with no subcommand). A `tokio::select!` loop over terminal
//! input, engine events and a clock tick; every queued event is applied before one frame is
//! drawn. The terminal is restored on quit, SIGTERM, error and panic; ctrl-z suspends.

mod app;
mod keys;
mod view;

pub use app::App;
use app::Request;

use crate::engine::logs::{self, LogEvent, LogSource};
use crate::engine::monitor;
use crate::inventory::Fleet;
use crate::ssh::Pool;
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::broadcast::error::TryRecvError;

/// Runs the console until the operator quits.
pub async fn run(fleet: Fleet, pool: Pool) -> std::io::Result<()> {
    let targets = fleet.hosts.iter().map(|h| pool.target(h)).collect();
    let mut conn_events = pool.subscribe();
    let watchers = monitor::spawn(&pool, targets, Duration::from_secs(2));
    let mut app = App::new(fleet);
    let mut terminal = ratatui::init();
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut log_rx: Option<tokio::sync::mpsc::UnboundedReceiver<LogEvent>> = None;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let result = loop {
        for request in std::mem::take(&mut app.requests) {
            if request == Request::Suspend {
                // Raw mode delivers ctrl-z as a key: give the terminal back, stop like any
                // job, and take the screen again when the shell's `fg` continues us.
                ratatui::restore();
                // SAFETY: raise sends SIGTSTP to this process; its default action stops it.
                unsafe {
                    libc::raise(libc::SIGTSTP);
                }
                terminal = ratatui::init();
                let _ = terminal.clear();
                continue;
            }
            // Replacing or dropping the receiver ends the previous stream, whose task then
            // cancels its remote command.
            log_rx = match request {
                Request::OpenLogs(name) => app.fleet.host(&name).map(|h| {
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                    let source = LogSource::Journal { unit: None };
                    tokio::spawn(logs::stream(
                        pool.clone(),
                        pool.target(h),
                        source,
                        true,
                        200,
                        tx,
                    ));
                    rx
                }),
                Request::CloseLogs | Request::Suspend => None,
            };
        }
        if let Err(e) = terminal.draw(|f| view::draw(f, &mut app, &clock())) {
            break Err(e);
        }
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    if app.input.is_some() {
                        app.on_input(key.code);
                    } else if let Some(action) = keys::action_for(key) {
                        app.apply(action);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            },
            ev = conn_events.recv() => {
                if let Ok(ev) = ev {
                    app.on_conn(ev);
                }
                // Drain what else is queued, then draw once.
                loop {
                    match conn_events.try_recv() {
                        Ok(ev) => app.on_conn(ev),
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
            }
            Some(ev) = async {
                match log_rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(pane) = app.logs.as_mut() {
                    pane.on_event(ev);
                    // Ingest everything queued before drawing: the screen never makes the
                    // stream wait, and a burst costs one frame.
                    if let Some(rx) = log_rx.as_mut() {
                        while let Ok(ev) = rx.try_recv() {
                            pane.on_event(ev);
                        }
                    }
                }
            }
            _ = term.recv() => app.quit = true,
            _ = tick.tick() => {}
        }
        if app.quit {
            break Ok(());
        }
    };
    ratatui::restore();
    for w in watchers {
        w.abort();
    }
    result
}

/// UTC wall clock, HH:MM:SS (the date formatting the log streams already use).
fn clock() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let stamp = logs::utc(micros);
    format!("{} UTC", stamp.get(11..19).unwrap_or(&stamp))
}

#[cfg(test)]
mod tests;

/// Draws one frame of `app` (benchmarks and tests drive the view without a real terminal).
#[doc(hidden)]
pub fn draw_frame<B: ratatui::backend::Backend>(
    terminal: &mut ratatui::Terminal<B>,
    app: &mut App,
) {
    let _ = terminal.draw(|f| view::draw(f, app, "12:00:00 UTC"));
}
