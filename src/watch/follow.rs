//! Following a member's change feed for as long as the cluster is watched: the feed (see
//! `Feed`) comes back by itself, at once when it had answered, with a backoff when it failed.

use super::Feed;
use crate::ssh::{ExecEvent, ExecSpec, Pool, Target};
use futures_util::future::BoxFuture;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Follows `feed` until `kick` closes.
pub async fn follow(mut feed: Box<dyn Feed>, kick: mpsc::Sender<()>) {
    let mut backoff = Duration::from_millis(500);
    while !kick.is_closed() {
        let started = Instant::now();
        match feed.follow(&kick).await {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(_) => {
                // A feed that ran a while before it ended starts its backoff again.
                if started.elapsed() > Duration::from_secs(10) {
                    backoff = Duration::from_millis(500);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The CLI path's feed (a cluster whose probes kbz.toml wraps): a command on the member that
/// prints a line whenever the cluster changes; each output chunk is a change.
pub struct Command {
    pub pool: Pool,
    pub target: Target,
    pub command: String,
}

impl Feed for Command {
    fn follow<'a>(&'a mut self, kick: &'a mpsc::Sender<()>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let spec = ExecSpec::command(self.command.clone());
            let mut exec = self
                .pool
                .exec_unlogged(&self.target, &spec)
                .await
                .map_err(|e| e.explain(&self.target.alias))?;
            while let Some(ev) = exec.next().await {
                match ev {
                    ExecEvent::Data(..) => {
                        let _ = kick.try_send(());
                    }
                    ExecEvent::Exit { .. } => break,
                }
            }
            // A watch command is meant to run for ever: its end is a failure, backed off.
            Err("the feed's command ended".into())
        })
    }
}
