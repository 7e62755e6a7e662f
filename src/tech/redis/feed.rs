//! Sentinel's change feed: it publishes its events (`+switch-master`, `+sdown`...) on pub/sub
//! channels, so the prober asks at once instead of an interval later.

use super::reader::read_password;
use crate::ssh::{Pool, Target};
use crate::watch::Feed;
use crate::watch::resp::settings;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

/// Sentinel's events that may move the leader or a member's state.
pub const EVENTS: [&str; 7] = [
    "+switch-master",
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+failover-end",
    "+reset-master",
];

/// One member's Sentinel, subscribed to `EVENTS`.
pub struct Events {
    pub pool: Pool,
    pub target: Target,
}

impl Feed for Events {
    fn follow<'a>(&'a mut self, kick: &'a mpsc::Sender<()>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(events(&self.pool, &self.target, kick))
    }
}

/// One Sentinel's events until its stream ends.
async fn events(pool: &Pool, target: &Target, kick: &mpsc::Sender<()>) -> Result<(), String> {
    let password = read_password(pool, target).await;
    let stream = pool.open_tcp(target, "127.0.0.1", 26379).await?;
    let mut pubsub = redis::aio::PubSub::new(&settings(password.as_deref()), stream)
        .await
        .map_err(|e| e.to_string())?;
    for event in EVENTS {
        pubsub.subscribe(event).await.map_err(|e| e.to_string())?;
    }
    let mut messages = pubsub.on_message();
    while messages.next().await.is_some() {
        let _ = kick.try_send(());
        if kick.is_closed() {
            return Ok(());
        }
    }
    Err("the Sentinel closed its event stream".into())
}

/// The CLI path's feed (a cluster whose probes kbz.toml wraps): redis-cli prints a line per
/// event.
pub fn command(_cluster: &crate::inventory::Cluster) -> String {
    format!(
        "REDISCLI_AUTH=$(cat {} 2>/dev/null) redis-cli --no-auth-warning -p 26379 SUBSCRIBE {}",
        super::reader::PASSWORD_FILE,
        EVENTS.join(" ")
    )
}
