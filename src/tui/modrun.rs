//! A module run started from the console: the same runner as `kbz install`, in a task of its
//! own, its events forwarded to the loop. Dropping the cancel sender stops it (its remote
//! commands are stopped, its logs kept).

use crate::engine::logs::LogEvent;
use crate::inventory::Fleet;
use crate::modules::record::{self, Record, Summary};
use crate::modules::secrets::Secrets;
use crate::modules::{Catalogue, RunEvent, Runner, Selection};
use crate::paths::Paths;
use crate::ssh::{Pool, Stream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

pub enum RunMsg {
    Started {
        id: String,
        hosts: Vec<String>,
    },
    Event(RunEvent),
    Finished(Summary),
    /// It could not start (no plan, a bad catalogue...).
    Refused(String),
}

pub struct ModuleRun {
    pub rx: UnboundedReceiver<RunMsg>,
    cancel: Option<oneshot::Sender<()>>,
}

impl ModuleRun {
    pub fn cancel(&mut self) {
        if let Some(c) = self.cancel.take() {
            let _ = c.send(());
        }
    }
}

pub struct Request {
    pub selection: Selection,
    pub install: bool,
}

pub fn start(fleet: Fleet, pool: Pool, paths: Paths, req: Request) -> ModuleRun {
    let (tx, rx) = unbounded_channel();
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        if let Err(e) = run(&fleet, &pool, &paths, req, &tx, cancel_rx).await {
            let _ = tx.send(RunMsg::Refused(e));
        }
    });
    ModuleRun {
        rx,
        cancel: Some(cancel_tx),
    }
}

async fn run(
    fleet: &Fleet,
    pool: &Pool,
    paths: &Paths,
    req: Request,
    tx: &UnboundedSender<RunMsg>,
    cancel: oneshot::Receiver<()>,
) -> Result<(), String> {
    let catalogue = Catalogue::for_config(&paths.config)?;
    let vars = crate::inventory::vars_for_inventory(&fleet.source)?;
    let plan = crate::modules::plan(&catalogue, fleet, &vars, req.selection, req.install, false)?;
    let mut secrets = Secrets::load(&paths.state, &fleet.env)?;
    secrets.ensure(&plan.secret_names(&catalogue))?;
    let mut record = Record::create(&paths.state, &plan)?;
    let mut hosts: Vec<String> = Vec::new();
    for pm in &plan.modules {
        for h in &pm.hosts {
            if !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
    }
    log::info!(target: "modules", "run {} started: {} module(s)", record.summary.id, plan.modules.len());
    let _ = tx.send(RunMsg::Started {
        id: record.summary.id.clone(),
        hosts,
    });
    let (etx, mut erx) = unbounded_channel();
    let runner = Runner {
        fleet,
        catalogue: &catalogue,
        pool,
        secrets: &secrets.values,
        redactor: secrets.redactor(),
        events: etx,
    };
    let forward = async {
        while let Some(ev) = erx.recv().await {
            let _ = tx.send(RunMsg::Event(ev));
        }
    };
    let work = async {
        // A dropped sender (the console closing) cancels as surely as a sent one.
        runner
            .run(&plan, &mut record, async {
                let _ = cancel.await;
            })
            .await;
        drop(runner);
    };
    tokio::join!(work, forward);
    let summary = record.finish().clone();
    log::info!(target: "modules", "run {}: {}", summary.id, summary.outcome);
    let _ = tx.send(RunMsg::Finished(summary));
    Ok(())
}

/// Applies a run's message to the console: progress, the log pane, the outcome.
pub fn apply(app: &mut super::App, paths: &Paths, msg: RunMsg) {
    match msg {
        RunMsg::Started { id, hosts } => {
            app.modules.run = Some(super::modview::RunView {
                phase: format!("run {id}"),
                hosts: Vec::new(),
                finished: None,
            });
            app.logs = Some(super::logpane::LogPane::new(&hosts, &format!("run {id}")));
            app.pane_open = true;
        }
        RunMsg::Event(ev) => {
            if let RunEvent::Line { host, stream, text } = &ev
                && let Some(pane) = app.logs.as_mut()
                && let Some(i) = pane.hosts.iter().position(|h| h.host == *host)
            {
                let line = match stream {
                    Stream::Stdout => LogEvent::Line(text.clone()),
                    Stream::Stderr => LogEvent::Warning(text.clone()),
                };
                pane.on_event(i, line);
            }
            app.modules.on_event(&ev);
        }
        RunMsg::Finished(s) => {
            let failed: Vec<String> = s
                .failures()
                .iter()
                .map(|(p, h)| format!("{} in module {} {}", h.host, p.module, p.phase))
                .collect();
            let line = format!(
                "{} {}: {} in {:.1} s{}",
                s.command,
                s.id,
                s.outcome.to_uppercase(),
                s.duration.as_secs_f64(),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!(" · failed: {}", failed.join(", "))
                }
            );
            if let Some(run) = app.modules.run.as_mut() {
                run.finished = Some(line.clone());
            }
            app.status = Some(line);
            app.modules.refresh(&record::list(&paths.state));
        }
        RunMsg::Refused(why) => {
            app.status = Some(format!("not started: {why}"));
            app.modules.run = None;
        }
    }
}
