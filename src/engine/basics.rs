//! Host basics (load, memory, disk, failed units, clock offset) for every host, every
//! `interval`, from one long-lived shell per host (`watch::shell`). Hosts the monitor does
//! not see up are skipped, not hammered: their connection state already says why, and the
//! pool backs their reconnects off.

use crate::probe::host::HostBasics;
use crate::ssh::{ConnState, Pool, Target};
use crate::watch::shell::Shell;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct BasicsEvent {
    pub host: String,
    pub basics: Result<HostBasics, String>,
}

pub fn spawn(
    pool: &Pool,
    targets: Vec<Target>,
    interval: Duration,
    tx: mpsc::UnboundedSender<BasicsEvent>,
) -> Vec<JoinHandle<()>> {
    targets
        .into_iter()
        .map(|target| {
            let (pool, tx) = (pool.clone(), tx.clone());
            tokio::spawn(async move {
                // One shell kept on the host: asked every interval, it starts no process.
                let mut shell = Shell::new(&pool, target.clone());
                loop {
                    // Checked every second, so that a host shows its basics soon after it
                    // comes up rather than an interval later.
                    if !matches!(pool.state(&target.alias), ConnState::Up { .. }) {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    let ev = BasicsEvent {
                        host: target.alias.clone(),
                        basics: shell.basics(Duration::from_secs(5)).await,
                    };
                    if tx.send(ev).is_err() {
                        return;
                    }
                    tokio::time::sleep(interval).await;
                }
            })
        })
        .collect()
}
