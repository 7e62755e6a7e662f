//! A failover test started from the console: the same run as `kbz failover`, in a task of its
//! own, its progress forwarded to the loop, its report written where the CLI writes one. The
//! console never exits with the fault in: quitting stops the test and waits for its heal.

use super::app::App;
use super::failstate::FailoverView;
use crate::failover::run::{self, Ctx, Progress, RunReport, Spec};
use crate::failover::save;
use std::path::PathBuf;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub enum FailMsg {
    Progress(Progress),
    Done {
        report: Box<RunReport>,
        written: Result<PathBuf, String>,
    },
}

pub struct FailoverRun {
    pub rx: UnboundedReceiver<FailMsg>,
    cancel: watch::Sender<Option<&'static str>>,
    task: JoinHandle<()>,
}

impl FailoverRun {
    /// Stops the test: its fault is healed at once, then it measures and reports.
    pub fn cancel(&self, by: &'static str) {
        let _ = self.cancel.send(Some(by));
    }

    pub fn finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the test and waits until its fault is healed and its report written; says
    /// what it ended with.
    pub async fn stop_and_wait(mut self) -> Option<(String, Result<PathBuf, String>)> {
        self.cancel("the console quit");
        let _ = self.task.await;
        while let Ok(msg) = self.rx.try_recv() {
            if let FailMsg::Done { report, written } = msg {
                return Some((report.verdict, written));
            }
        }
        None
    }
}

/// Opens the Failover view and starts the test behind it.
pub fn start(app: &mut App, ctx: Ctx, spec: Spec) -> FailoverRun {
    let technology = app
        .fleet
        .clusters
        .iter()
        .find(|c| c.name == spec.cluster)
        .map_or("", |c| c.technology.label());
    app.failover = Some(FailoverView::new(
        &spec.cluster,
        technology,
        spec.fault,
        spec.target.clone(),
    ));
    app.focus = super::keys::Context::Failover;
    app.fullscreen = false;
    let (tx, rx) = unbounded_channel();
    let (cancel, cancel_rx) = watch::channel(None);
    let task = tokio::spawn(async move {
        let series = save::series_id(&spec.cluster);
        let (ptx, mut prx) = unbounded_channel();
        let forward_tx = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                let _ = forward_tx.send(FailMsg::Progress(p));
            }
        });
        log::warn!(target: "failover", "{} on {} of {}: started from the console", spec.fault.name(),
            spec.target.as_deref().unwrap_or("the leader"), spec.cluster);
        let report = run::run(&ctx, &spec, &format!("{series}-1"), ptx, cancel_rx).await;
        let _ = forward.await;
        let command = format!(
            "kbz console: failover {} --fault {} --target {}{}",
            spec.cluster,
            spec.fault.name(),
            spec.target.as_deref().unwrap_or("leader"),
            if spec.force { " --force" } else { "" }
        );
        let written = save::write(
            std::slice::from_ref(&report),
            &command,
            &save::default_report(&ctx.paths.state, &series),
        )
        .map(|w| w.markdown);
        log::warn!(target: "failover", "{}: {}", spec.cluster, report.verdict);
        let _ = tx.send(FailMsg::Done {
            report: Box::new(report),
            written,
        });
    });
    FailoverRun { rx, cancel, task }
}

pub fn apply(app: &mut App, msg: FailMsg) {
    let Some(view) = app.failover.as_mut() else {
        return;
    };
    match msg {
        FailMsg::Progress(p) => view.on_progress(p),
        FailMsg::Done { report, written } => {
            app.status = Some(format!("failover test: {}", report.verdict));
            view.finished = Some(super::failstate::Finished::of(&report, written));
        }
    }
}
