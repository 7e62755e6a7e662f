//! Host basics (load, memory, disk, failed units, clock offset) for every host, every
//! `interval`. Hosts the monitor does not see up are skipped, not hammered: their connection
//! state already says why, and the pool backs their reconnects off.

use crate::probe::host::{HostBasics, probe};
use crate::ssh::{ConnState, Pool, Target};
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
                loop {
                    // Checked every second, so that a host shows its basics soon after it
                    // comes up rather than an interval later.
                    if !matches!(pool.state(&target.alias), ConnState::Up { .. }) {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    let ev = BasicsEvent {
                        host: target.alias.clone(),
                        basics: probe(&pool, &target).await,
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
