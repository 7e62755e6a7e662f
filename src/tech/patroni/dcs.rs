//! Patroni's cluster view read straight from its DCS (etcd's v2 keys under
//! `NAMESPACE/<scope>/`), the way Patroni's own `GET /cluster` builds it: the leader key names
//! the leader, `/sync` the sync standby, each member's key its state, timeline, tags and WAL
//! position, `/status` the leader's last position (lag is the difference), `/config` pause
//! and the failover limits.
//!
//! Why not ask Patroni: its REST API speaks HTTP/1.0 and starts a thread for every request
//! (and its `/patroni` may open a PostgreSQL session), so polling it costs the host; etcd
//! answers the same facts on a kept-alive connection for nothing. The output is Patroni's own
//! `/cluster` JSON, so `patroni::status` reads either.

use serde::Deserialize;
use serde_json::{Value, json};

/// Where the lab's (and the seed's) Patroni keeps its keys (`namespace` in its config).
pub const NAMESPACE: &str = "/kbz";

/// The v2 API path of a cluster's keys, all of them in one answer.
pub fn keys_path(scope: &str) -> String {
    format!("/v2/keys{NAMESPACE}/{scope}/?recursive=true")
}

#[derive(Deserialize)]
struct Answer {
    node: Node,
}

#[derive(Deserialize)]
struct Node {
    key: String,
    value: Option<String>,
    #[serde(default)]
    nodes: Vec<Node>,
}

/// `/cluster` and `/config` as Patroni would answer them, from etcd's answer to
/// `keys_path(scope)`.
pub fn cluster_and_config(etcd_answer: &str) -> Result<(String, String), String> {
    let a: Answer = serde_json::from_str(etcd_answer).map_err(|e| format!("etcd keys: {e}"))?;
    let root = a.node.key.trim_end_matches('/').to_string();
    let value = |name: &str| {
        a.node
            .nodes
            .iter()
            .find(|n| n.key == format!("{root}/{name}"))
            .and_then(|n| n.value.clone())
    };
    let leader = value("leader");
    let config: Value = value("config")
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_else(|| json!({}));
    let sync: Value = value("sync")
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let sync_standbys: Vec<&str> = sync["sync_standby"]
        .as_str()
        .map_or(Vec::new(), |s| s.split(',').map(str::trim).collect());
    // The leader's last WAL position: `/status` (Patroni 2.1+), else the older `/optime/leader`.
    let last_lsn = value("status")
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|s| s["optime"].as_u64())
        .or_else(|| {
            a.node
                .nodes
                .iter()
                .find(|n| n.key == format!("{root}/optime"))
                .and_then(|o| o.nodes.iter().find(|n| n.key.ends_with("/leader")))
                .and_then(|n| n.value.as_deref()?.parse().ok())
        })
        .unwrap_or(0);
    let members_dir = a
        .node
        .nodes
        .iter()
        .find(|n| n.key == format!("{root}/members"));
    let mut members: Vec<Value> = Vec::new();
    for m in members_dir.map_or(&[][..], |d| &d.nodes[..]) {
        let name = m.key.rsplit('/').next().unwrap_or_default().to_string();
        let data: Value = m
            .value
            .as_deref()
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        let role = if leader.as_deref() == Some(name.as_str()) {
            "leader"
        } else if sync_standbys.contains(&name.as_str()) {
            "sync_standby"
        } else {
            "replica"
        };
        let mut member = json!({
            "name": name,
            "role": role,
            "state": data["state"].as_str().unwrap_or_default(),
            "api_url": data["api_url"],
        });
        if let Some((host, port)) = data["conn_url"].as_str().and_then(conn_host) {
            member["host"] = json!(host);
            member["port"] = json!(port);
        }
        for k in ["timeline", "pending_restart", "scheduled_restart", "tags"] {
            if !data[k].is_null() {
                member[k] = data[k].clone();
            }
        }
        if role != "leader" {
            member["lag"] = match data["xlog_location"].as_u64() {
                None => json!("unknown"),
                Some(lsn) => json!(last_lsn.saturating_sub(lsn)),
            };
        }
        members.push(member);
    }
    members.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut cluster = json!({ "members": members });
    if config["pause"].as_bool() == Some(true) {
        cluster["pause"] = json!(true);
    }
    Ok((cluster.to_string(), config.to_string()))
}

/// `postgres://10.0.0.5:5432/postgres` -> ("10.0.0.5", 5432).
fn conn_host(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::fixture;

    fn members(cluster: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(cluster).unwrap();
        v["members"].as_array().unwrap().clone()
    }

    #[test]
    fn the_dcs_gives_what_patroni_s_cluster_endpoint_gives() {
        // Both captured within a second of each other on the healthy lab.
        let (cluster, config) = cluster_and_config(&fixture("etcd/keys-healthy.json")).unwrap();
        let from_patroni: Value =
            serde_json::from_str(&fixture("patroni/cluster-dcs-healthy.json")).unwrap();
        let mut ours = members(&cluster);
        let mut theirs = from_patroni["members"].as_array().unwrap().clone();
        // Positions move between two reads; the rest must be the same.
        for m in ours.iter_mut().chain(theirs.iter_mut()) {
            m.as_object_mut().unwrap().remove("lag");
        }
        assert_eq!(ours, theirs);
        assert!(members(&cluster)[1]["lag"].is_u64());
        let c: Value = serde_json::from_str(&config).unwrap();
        assert_eq!(c["loop_wait"], 2);
        let s = crate::tech::patroni::view::status(
            "postgres",
            &cluster,
            Some(&config),
            None,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(s.leader.as_deref(), Some("db-master-01"));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn paused_sync_and_leaderless_clusters() {
        let (cluster, config) = cluster_and_config(&fixture("etcd/keys-paused.json")).unwrap();
        let v: Value = serde_json::from_str(&cluster).unwrap();
        assert_eq!(v["pause"], true, "{cluster}");
        assert!(config.contains("\"pause\":true"));
        let (cluster, _) = cluster_and_config(&fixture("etcd/keys-sync.json")).unwrap();
        assert!(
            members(&cluster)
                .iter()
                .any(|m| m["role"] == "sync_standby"),
            "{cluster}"
        );
        // The leader key expired: no member leads, each shows its own timeline.
        let leaderless = fixture("etcd/keys-healthy.json")
            .replace("/kbz/postgres/leader", "/kbz/postgres/leader-gone");
        let (cluster, _) = cluster_and_config(&leaderless).unwrap();
        assert!(members(&cluster).iter().all(|m| m["role"] == "replica"));
        assert!(cluster_and_config("garbage").is_err());
    }
}
