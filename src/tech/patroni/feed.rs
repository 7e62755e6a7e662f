//! Patroni's change feed: etcd answers a long-polled watch on the cluster's leader key (v2
//! API, Debian's Patroni 3.0), each member through its own etcd, so a dead one takes only its
//! own feed down.

use super::dcs::NAMESPACE;
use crate::inventory::Cluster;
use crate::ssh::quote::quote;
use crate::watch::Feed;
use crate::watch::http::Http;
use futures_util::future::BoxFuture;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one etcd long-poll may wait before it is asked again.
const WATCH_WAIT: Duration = Duration::from_secs(55);

/// A watch on one member's etcd.
pub struct Leader {
    pub etcd: Http,
    /// `/v2/keys/kbz/<scope>/leader`.
    pub key: String,
    /// The etcd index to wait from: no change is missed between two polls.
    pub wait_index: Option<u64>,
}

impl Leader {
    pub fn key(cluster: &Cluster) -> String {
        format!("/v2/keys{NAMESPACE}/{}/leader", cluster.name)
    }
}

impl Feed for Leader {
    fn follow<'a>(&'a mut self, kick: &'a mpsc::Sender<()>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(etcd_leader(
            &mut self.etcd,
            &self.key,
            &mut self.wait_index,
            kick,
        ))
    }
}

/// The CLI path's feed (a cluster whose probes kbz.toml wraps): etcdctl prints each change;
/// `{self}` is the member's own address.
pub fn command(cluster: &Cluster) -> String {
    format!(
        "ETCDCTL_API=2 etcdctl --endpoints http://{{self}}:2379 watch --forever {}",
        quote(&format!("{NAMESPACE}/{}/leader", cluster.name))
    )
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
