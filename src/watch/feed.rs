//! Change feeds, natively: the cluster tells kbz when it changes, so the prober asks at once
//! instead of an interval later. Sentinel publishes its events (`+switch-master`, `+sdown`...)
//! on its pub/sub channels; etcd answers a long-polled watch on Patroni's leader key. Each
//! member's feed runs on its own stream and comes back by itself with a backoff.

use super::http::Http;
use super::members::read_password;
use super::resp::settings;
use crate::inventory::{Cluster, Technology};
use crate::ssh::{Pool, Target};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;

/// Sentinel's events that may move the leader or a member's state.
const SENTINEL_EVENTS: [&str; 7] = [
    "+switch-master",
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+failover-end",
    "+reset-master",
];

/// How long one etcd long-poll may wait before it is asked again.
const WATCH_WAIT: Duration = Duration::from_secs(55);

/// Follows `target`'s feed until `kick` closes; each change sends one (a full channel means
/// a probe is already due: nothing is lost).
pub async fn follow(
    pool: Pool,
    target: Target,
    ip: String,
    cluster: Cluster,
    kick: mpsc::Sender<()>,
) {
    let mut backoff = Duration::from_millis(500);
    let mut etcd = Http::new(&pool, target.clone(), &ip, 2379);
    let leader_key = format!("/v2/keys/kbz/{}/leader", cluster.name);
    // The etcd index to wait from: no change is missed between two polls.
    let mut wait_index: Option<u64> = None;
    while !kick.is_closed() {
        let started = std::time::Instant::now();
        let followed = match cluster.technology {
            Technology::Redis => sentinel_events(&pool, &target, &kick).await,
            Technology::Patroni => {
                etcd_leader(&mut etcd, &leader_key, &mut wait_index, &kick).await
            }
            _ => return,
        };
        match followed {
            // It answered: reconnect at once if it ends.
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

/// One Sentinel's events until its stream ends.
async fn sentinel_events(
    pool: &Pool,
    target: &Target,
    kick: &mpsc::Sender<()>,
) -> Result<(), String> {
    let password = read_password(pool, target).await;
    let stream = pool.open_tcp(target, "127.0.0.1", 26379).await?;
    let mut pubsub = redis::aio::PubSub::new(&settings(password.as_deref()), stream)
        .await
        .map_err(|e| e.to_string())?;
    for event in SENTINEL_EVENTS {
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

/// One long-poll of the leader key. Patroni refreshes the key every loop_wait without
/// changing it: only a new value, a deletion or an expiry is a change.
async fn etcd_leader(
    etcd: &mut Http,
    key: &str,
    wait_index: &mut Option<u64>,
    kick: &mpsc::Sender<()>,
) -> Result<(), String> {
    let path = match wait_index {
        Some(i) => format!("{key}?wait=true&waitIndex={i}"),
        None => format!("{key}?wait=true"),
    };
    let r = match etcd.get(&path, WATCH_WAIT).await {
        Ok(r) => r,
        // Nothing changed for that long: ask again.
        Err(e) if e.contains("no answer within") => return Ok(()),
        Err(e) => return Err(e),
    };
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    match r.status {
        200 => {
            *wait_index = v["node"]["modifiedIndex"].as_u64().map(|i| i + 1);
            if leader_changed(&v) {
                let _ = kick.try_send(());
            }
            Ok(())
        }
        // The index waited from is older than etcd keeps (errorCode 401): start from now.
        400 | 401 if v["errorCode"].as_u64() == Some(401) => {
            *wait_index = None;
            let _ = kick.try_send(());
            Ok(())
        }
        status => {
            *wait_index = None;
            Err(format!("etcd watch: HTTP {status}"))
        }
    }
}

/// Whether an etcd v2 watch event changed who leads.
pub fn leader_changed(event: &serde_json::Value) -> bool {
    let action = event["action"].as_str().unwrap_or_default();
    let now = event["node"]["value"].as_str();
    let before = event["prevNode"]["value"].as_str();
    !matches!(action, "compareAndSwap" | "update") || now != before
}

#[cfg(test)]
mod tests {
    use super::leader_changed;
    use serde_json::json;

    #[test]
    fn a_refresh_of_the_leader_key_is_not_a_change() {
        let refresh = json!({"action": "compareAndSwap",
            "node": {"key": "/kbz/postgres/leader", "value": "db-master-01", "modifiedIndex": 9},
            "prevNode": {"value": "db-master-01"}});
        assert!(!leader_changed(&refresh));
        for event in [
            json!({"action": "expire", "node": {}, "prevNode": {"value": "db-master-01"}}),
            json!({"action": "delete", "node": {}, "prevNode": {"value": "db-master-01"}}),
            json!({"action": "create", "node": {"value": "db-slave-01"}}),
            json!({"action": "compareAndSwap", "node": {"value": "db-slave-01"},
                "prevNode": {"value": "db-master-01"}}),
        ] {
            assert!(leader_changed(&event), "{event}");
        }
    }
}
