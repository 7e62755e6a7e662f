//! The full-screen console (`kbz` with no subcommand). A `tokio::select!` loop over terminal
//! input, engine events and a clock tick; every queued event is applied before one frame is
//! drawn. The terminal is restored on quit, SIGTERM, error and panic; ctrl-z suspends.

mod app;
mod cmdlog;
mod confirm;
mod diag;
mod failpick;
mod failrun;
mod failstate;
mod failview;
mod grid;
mod input;
mod keys;
mod logpane;
mod modrun;
mod modview;
mod pane_keys;
mod panes;
mod pointer;
mod streams;
mod theme;
mod view;

pub use app::App;
use app::Request;
pub use keys::Keymap;
pub use logpane::{LOG_CAPACITY, LogPane, Pattern};

use crate::engine::logs;
use crate::engine::monitor;
use crate::inventory::Fleet;
use crate::paths::Paths;
use crate::ssh::Pool;
use crossterm::event::{
    Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use futures_util::StreamExt;
use std::path::PathBuf;
use std::time::Duration;

/// The longest a change waits to be drawn when no key was pressed.
const FRAME: Duration = Duration::from_millis(250);
use tokio::sync::broadcast::error::TryRecvError;

/// How the console was asked to run.
pub struct Options {
    pub theme: Option<String>,
    pub readonly: bool,
    pub paths: Paths,
    /// The fleet is kbz's lab (offers the host crash fault).
    pub lab: bool,
}

/// Everything that can fail before the screen is taken: the user's key bindings, theme and
/// config. Errors name the file.
pub fn prepare(fleet: Fleet, opts: &Options) -> Result<App, String> {
    let mut app = App::new(fleet);
    app.keymap = keys::Keymap::load(&opts.paths.config.join("keys.toml"))?;
    let config = theme::ConsoleConfig::load(&opts.paths.config)?;
    let themes = theme::Themes::new(&opts.paths.config);
    app.theme = themes.load(&config.theme_for(opts.theme.as_deref(), &app.fleet.env))?;
    app.themes = Some(themes);
    app.readonly = opts.readonly;
    app.lab = opts.lab;
    let catalogue = crate::modules::Catalogue::for_config(&opts.paths.config)?;
    app.modules =
        modview::ModulesView::new(&catalogue, &crate::modules::record::list(&opts.paths.state));
    app.history = std::fs::read_to_string(history_file(&opts.paths))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default();
    Ok(app)
}

fn history_file(paths: &Paths) -> PathBuf {
    paths.state.join("command-history")
}

/// Runs the console until the operator quits.
pub async fn run(mut app: App, pool: Pool, paths: Paths) -> std::io::Result<()> {
    // The diagnostics tab shows kbz's own log; a second console in one process keeps the
    // first logger.
    diag::init(log::LevelFilter::Info);
    let targets: Vec<_> = app.fleet.hosts.iter().map(|h| pool.target(h)).collect();
    let (basics_tx, mut basics_rx) = tokio::sync::mpsc::unbounded_channel();
    let (endpoints_tx, mut endpoints_rx) = tokio::sync::mpsc::unbounded_channel();
    let basics =
        crate::engine::basics::spawn(&pool, targets.clone(), Duration::from_secs(10), basics_tx);
    let mut conn_events = pool.subscribe();
    let mut command_events = pool.subscribe_commands();
    let mut watchers = monitor::spawn(&pool, targets, Duration::from_secs(2));
    watchers.extend(basics);
    watchers.push(crate::engine::endpoints::spawn(
        &pool,
        std::sync::Arc::new(app.fleet.clone()),
        paths.state.clone(),
        Duration::from_secs(5),
        endpoints_tx,
    ));
    let (probe_tx, mut probe_rx) = tokio::sync::mpsc::unbounded_channel();
    let config = crate::inventory::fleet_config(&app.fleet.source).unwrap_or_else(|e| {
        log::error!(target: "probe", "{e}; probing without it");
        Default::default()
    });
    let fleet_arc = std::sync::Arc::new(app.fleet.clone());
    watchers.extend(crate::engine::prober::spawn(
        &pool,
        fleet_arc.clone(),
        config.clone(),
        crate::engine::prober::STEADY,
        probe_tx,
    ));
    log::info!(target: "console", "watching {} hosts of ENV {}", app.fleet.hosts.len(), app.fleet.env);
    // A failover test that died with its fault in (kbz killed, a crash) is healed now;
    // in --readonly it is only said.
    if app.readonly {
        let ledger = crate::failover::ledger::Ledger::new(&paths.state, &app.fleet.env);
        for e in ledger.entries().unwrap_or_default() {
            log::warn!(target: "failover", "{} on {} is still in (left at {}); --readonly does not heal it", e.fault, e.host, e.injected_at);
        }
    } else {
        let (pool, fleet, paths) = (pool.clone(), app.fleet.clone(), paths.clone());
        tokio::spawn(async move {
            match crate::failover::ledger::heal_pending(&pool, &fleet, &paths).await {
                Ok(lines) => lines
                    .iter()
                    .for_each(|l| log::warn!(target: "failover", "{l}")),
                Err(e) => log::error!(target: "failover", "fault ledger: {e}"),
            }
        });
    }
    // ratatui's panic hook restores the screen; mouse reporting must go too, or the shell
    // after a crash receives escape codes for every click.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        previous(info);
    }));
    let mut terminal = take_terminal();
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut streams = streams::Streams::default();
    let mut module_run: Option<modrun::ModuleRun> = None;
    let mut failover_run: Option<failrun::FailoverRun> = None;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Frames: at once after a key or a click; otherwise at most one per FRAME, whatever the
    // fleet sends (15 hosts' pings alone are 7 events a second), and none when nothing came.
    let mut dirty = true;
    let mut urgent = true;
    let mut last_draw = tokio::time::Instant::now();
    let result = loop {
        for request in std::mem::take(&mut app.requests) {
            match request {
                Request::Suspend => {
                    // Raw mode delivers ctrl-z as a key: give the terminal back, stop like
                    // any job, and take the screen again when the shell's `fg` continues us.
                    give_back_terminal();
                    // SAFETY: raise sends SIGTSTP to this process; its default action stops it.
                    unsafe {
                        libc::raise(libc::SIGTSTP);
                    }
                    terminal = take_terminal();
                    let _ = terminal.clear();
                }
                Request::Save { name, lines } => {
                    app.status = Some(save(&paths, &name, &lines));
                }
                Request::CancelRun => {
                    if let Some(r) = module_run.as_mut() {
                        r.cancel();
                    }
                }
                Request::StopFailover => {
                    if let Some(r) = failover_run.as_ref() {
                        r.cancel("stopped from the console");
                    }
                }
                Request::Execute(ref done)
                    if let confirm::Pending::Failover {
                        cluster,
                        fault,
                        target,
                        force,
                    } = done.pending() =>
                {
                    if failover_run.as_ref().is_some_and(|r| !r.finished()) {
                        app.status = Some("a failover test is running: one at a time".into());
                        continue;
                    }
                    let ctx = crate::failover::run::Ctx {
                        pool: pool.clone(),
                        fleet: fleet_arc.clone(),
                        config: config.clone(),
                        paths: paths.clone(),
                        lab: app.lab,
                    };
                    let spec = crate::failover::run::Spec {
                        cluster: cluster.clone(),
                        target: target.clone(),
                        fault: *fault,
                        duration: Duration::from_secs(crate::failover::run::DEFAULT_DURATION_S),
                        force: *force,
                    };
                    failover_run = Some(failrun::start(&mut app, ctx, spec));
                }
                other => {
                    if let Some(run) = streams.handle(other, &mut app, &pool, &paths) {
                        module_run = Some(run);
                    }
                }
            }
        }
        if dirty && (urgent || last_draw.elapsed() >= FRAME) {
            if let Err(e) = terminal.draw(|f| view::draw(f, &mut app, &clock())) {
                break Err(e);
            }
            last_draw = tokio::time::Instant::now();
            (dirty, urgent) = (false, false);
        }
        let mut input_came = false;
        tokio::select! {
            ev = input.next() => {
                input_came = true;
                match ev {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    // A terminal sends Esc then a key typed fast as one Alt+key: unless that
                    // is bound, it was meant as the two keys.
                    key_in(&mut app, key);
                }
                Some(Ok(Event::Mouse(m))) => match m.kind {
                    MouseEventKind::Down(MouseButton::Left) => app.on_click(m.column, m.row),
                    MouseEventKind::ScrollDown => app.on_wheel(m.column, m.row, true),
                    MouseEventKind::ScrollUp => app.on_wheel(m.column, m.row, false),
                    _ => {}
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
                }
            }
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
            Some(ev) = basics_rx.recv() => app.on_basics(ev),
            Some(checks) = endpoints_rx.recv() => app.on_endpoints(checks),
            Some(ev) = probe_rx.recv() => {
                app.on_probe(ev);
                while let Ok(ev) = probe_rx.try_recv() {
                    app.on_probe(ev);
                }
            }
            ev = command_events.recv() => {
                if let Ok(ev) = ev {
                    app.commands.on_event(ev);
                }
                while let Ok(ev) = command_events.try_recv() {
                    app.commands.on_event(ev);
                }
            }
            Some(msg) = async {
                match module_run.as_mut() {
                    Some(r) => r.rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                modrun::apply(&mut app, &paths, msg);
                if let Some(run) = module_run.as_mut() {
                    while let Ok(msg) = run.rx.try_recv() {
                        modrun::apply(&mut app, &paths, msg);
                    }
                }
            }
            Some(msg) = async {
                match failover_run.as_mut() {
                    Some(r) => r.rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                failrun::apply(&mut app, msg);
                if let Some(run) = failover_run.as_mut() {
                    while let Ok(msg) = run.rx.try_recv() {
                        failrun::apply(&mut app, msg);
                    }
                }
            }
            Some((host, ev)) = streams.next() => {
                // Ingest everything queued before drawing: the screen never makes a stream
                // wait, and a burst costs one frame.
                streams.ingest(&mut app, host, ev);
            }
            _ = term.recv() => app.quit = true,
            _ = tick.tick() => {}
            // The frame held back for FRAME is due.
            _ = tokio::time::sleep_until(last_draw + FRAME), if dirty => {}
        }
        dirty = true;
        urgent |= input_came;
        if app.quit {
            break Ok(());
        }
    };
    give_back_terminal();
    // Never leave with a fault in: stop the test and wait for its heal.
    if let Some(r) = failover_run
        && !r.finished()
    {
        eprintln!("kbz: stopping the failover test: healing its fault before exiting…");
        match r.stop_and_wait().await {
            Some((verdict, Ok(report))) => {
                eprintln!("kbz: {verdict}\nkbz: report {}", report.display())
            }
            Some((verdict, Err(e))) => {
                eprintln!("kbz: {verdict}\nkbz: the report could not be written: {e}")
            }
            None => eprintln!("kbz: the test ended without a report"),
        }
    }
    for w in watchers {
        w.abort();
    }
    save_history(&paths, &app.history);
    result
}

/// A key from the terminal. Terminals send Esc then a key typed fast as one Alt+key: unless
/// that is bound, it was meant as the two keys.
fn key_in(app: &mut App, key: KeyEvent) {
    if key.modifiers.contains(KeyModifiers::ALT)
        && app.keymap.action_for(key, app.context()).is_none()
    {
        press(app, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        press(
            app,
            KeyEvent::new(key.code, key.modifiers - KeyModifiers::ALT),
        );
    } else {
        press(app, key);
    }
}

/// One key, as the app takes it: typed text first, else the focused view's bindings.
fn press(app: &mut App, key: KeyEvent) {
    if !app.on_text_key(key.code)
        && let Some(action) = app.keymap.action_for(key, app.context())
    {
        app.apply(action);
    }
}

fn take_terminal() -> ratatui::DefaultTerminal {
    let terminal = ratatui::init();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    terminal
}

fn give_back_terminal() {
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
}

/// Writes a log pane to the state dir; the answer is shown to the operator.
fn save(paths: &Paths, name: &str, lines: &[String]) -> String {
    let dir = paths.state.join("logs");
    let stamp = logs::utc_now();
    let stamp = format!(
        "{}Z",
        stamp.get(..19).unwrap_or(&stamp).replace([':', '-'], "")
    );
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '+' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let path = dir.join(format!("{safe}-{stamp}.log"));
    let mut text = lines.join("\n");
    text.push('\n');
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, text)) {
        Ok(()) => format!("saved {} lines to {}", lines.len(), path.display()),
        Err(e) => format!("cannot save to {}: {e}", path.display()),
    }
}

fn save_history(paths: &Paths, history: &[String]) {
    let file = history_file(paths);
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(file, history.join("\n") + "\n");
}

/// UTC wall clock, HH:MM:SS (the date formatting the log streams already use).
fn clock() -> String {
    let stamp = logs::utc_now();
    format!("{} UTC", stamp.get(11..19).unwrap_or(&stamp))
}

#[cfg(test)]
mod failtests;
#[cfg(test)]
mod logtests;
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
