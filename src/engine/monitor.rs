//! Keeps every host's connection state fresh: connect once, then an SSH-level ping every
//! `interval` (no process on the host), so a host that dies or is cut off shows as down within
//! a few seconds, and comes back by itself. Dead hosts are retried with the pool's backoff.

use crate::ssh::{Pool, Target};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Starts one watcher per target; dropping the handles does not stop them, aborting does.
pub fn spawn(pool: &Pool, targets: Vec<Target>, interval: Duration) -> Vec<JoinHandle<()>> {
    targets
        .into_iter()
        .map(|target| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // The pool publishes every state change; the outcome itself is not needed.
                    let _ = pool
                        .ping(&target, interval.max(Duration::from_secs(2)))
                        .await;
                }
            })
        })
        .collect()
}
