//! Following a member's change feed for as long as the cluster is watched: the feed (see
//! `Feed`) comes back by itself, at once when it had answered, with a backoff when it failed.

use super::Feed;
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
