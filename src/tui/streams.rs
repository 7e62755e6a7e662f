//! The console's side of the engine: the log pane's streams (one per host, tagged with the
//! host's place in the pane) and the confirmed actions. Replacing or dropping the receiver
//! ends every stream feeding it, and their remote commands with them.

use super::app::{App, Request, Tab};
use super::confirm::Pending;
use super::logpane::LogPane;
use crate::engine::logs::{self, LogEvent};
use crate::ssh::{ExecEvent, ExecSpec, LineBuffer, Pool, Stream};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

type Tagged = (usize, LogEvent);

#[derive(Default)]
pub struct Streams {
    rx: Option<UnboundedReceiver<Tagged>>,
}

impl Streams {
    pub async fn next(&mut self) -> Option<Tagged> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }

    /// Applies one event and everything else already queued.
    pub fn ingest(&mut self, app: &mut App, host: usize, ev: LogEvent) {
        let Some(pane) = app.logs.as_mut() else {
            return;
        };
        pane.on_event(host, ev);
        if let Some(rx) = self.rx.as_mut() {
            while let Ok((h, ev)) = rx.try_recv() {
                pane.on_event(h, ev);
            }
        }
    }

    /// Starts or stops what a request asks; a module run it starts is returned to the loop.
    pub fn handle(
        &mut self,
        request: Request,
        app: &mut App,
        pool: &Pool,
        paths: &crate::paths::Paths,
    ) -> Option<super::modrun::ModuleRun> {
        match request {
            Request::OpenLogs { hosts, source } => {
                let (tx, rx) = mpsc::unbounded_channel();
                for (i, name) in hosts.iter().enumerate() {
                    let Some(host) = app.fleet.host(name) else {
                        continue;
                    };
                    let (host_tx, host_rx) = mpsc::unbounded_channel();
                    tokio::spawn(logs::stream(
                        pool.clone(),
                        pool.target(host),
                        source.clone(),
                        true,
                        200,
                        host_tx,
                    ));
                    tokio::spawn(forward(i, host_rx, tx.clone()));
                }
                self.rx = Some(rx);
            }
            Request::CloseLogs => self.rx = None,
            Request::Execute(done) => match done.pending().clone() {
                Pending::Run { hosts, command } => self.run(app, pool, hosts, command),
                Pending::Modules {
                    number,
                    from,
                    install,
                    ..
                } => {
                    // The run's lines replace whatever the log pane followed.
                    self.rx = None;
                    let selection = if from {
                        crate::modules::Selection::From(number)
                    } else {
                        crate::modules::Selection::One(number)
                    };
                    let req = super::modrun::Request { selection, install };
                    app.modules.run = Some(super::modview::RunView {
                        phase: "starting…".into(),
                        hosts: Vec::new(),
                        finished: None,
                    });
                    app.tab = Tab::Modules;
                    app.pane_open = true;
                    return Some(super::modrun::start(
                        app.fleet.clone(),
                        pool.clone(),
                        paths.clone(),
                        req,
                    ));
                }
                Pending::TrustKey { host, key } => {
                    if let Some(h) = app.fleet.host(&host) {
                        pool.trust_key(&pool.target(h), &key);
                        app.status = Some(format!("{host}: key accepted, reconnecting"));
                    }
                }
                // The loop starts failover tests itself.
                Pending::Failover { .. } => {}
            },
            Request::StopFailover
            | Request::Suspend
            | Request::Save { .. }
            | Request::CancelRun => {}
        }
        None
    }

    /// A confirmed command: its output in the log pane, one column or prefix per host, its
    /// exit in the command log. Closing the pane cancels it on every host.
    fn run(&mut self, app: &mut App, pool: &Pool, hosts: Vec<String>, command: String) {
        log::info!(target: "console", "run on {}: {command}", hosts.join(","));
        let (tx, rx) = mpsc::unbounded_channel();
        for (i, name) in hosts.iter().enumerate() {
            let Some(host) = app.fleet.host(name) else {
                continue;
            };
            let target = pool.target(host);
            let pool = pool.clone();
            let spec = ExecSpec::command(command.clone());
            let tx = tx.clone();
            tokio::spawn(async move {
                let send = |ev| tx.send((i, ev)).is_ok();
                let mut exec = match pool.exec(&target, &spec).await {
                    Ok(e) => e,
                    Err(state) => {
                        send(LogEvent::Ended(Err(state.explain(&target.alias))));
                        return;
                    }
                };
                let (mut out, mut err) = (LineBuffer::default(), LineBuffer::default());
                loop {
                    let ev = tokio::select! {
                        ev = exec.next() => ev,
                        // The pane was closed: dropping the exec stops the command.
                        _ = tx.closed() => return,
                    };
                    match ev {
                        Some(ExecEvent::Data(Stream::Stdout, d)) => {
                            for l in out.push(&d) {
                                send(LogEvent::Line(l));
                            }
                        }
                        Some(ExecEvent::Data(Stream::Stderr, d)) => {
                            for l in err.push(&d) {
                                send(LogEvent::Warning(l));
                            }
                        }
                        Some(ExecEvent::Exit { exit, duration }) => {
                            if let Some(l) = out.finish() {
                                send(LogEvent::Line(l));
                            }
                            let done = format!("{exit:?} after {:.2} s", duration.as_secs_f64());
                            send(LogEvent::Ended(if exit.success() {
                                Ok(())
                            } else {
                                Err(done)
                            }));
                            return;
                        }
                        None => return,
                    }
                }
            });
        }
        let mut pane = LogPane::new(&hosts, &format!("$ {command}"));
        pane.split = hosts.len() > 1 && hosts.len() <= 4;
        app.logs = Some(pane);
        app.pane_open = true;
        app.tab = Tab::Logs;
        self.rx = Some(rx);
    }
}

/// Tags one host's events with its place in the pane; ends when the pane's receiver goes,
/// which drops `rx` and so ends the host's stream and its remote command.
async fn forward(i: usize, mut rx: UnboundedReceiver<LogEvent>, tx: UnboundedSender<Tagged>) {
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => {
                    if tx.send((i, ev)).is_err() {
                        return;
                    }
                }
                None => return,
            },
            _ = tx.closed() => return,
        }
    }
}
