//! What RabbitMQ's management API and Prometheus endpoint say, parsed: the nodes as one node
//! sees them, the queues, a node's quorum-critical check, its quorum queue members' Raft
//! terms and log indices, and the partition-handling setting.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// `GET /api/nodes?columns=` (what `Node` reads).
pub const NODES: &str = "/api/nodes?columns=name,running,partitions,mem_alarm,disk_free_alarm,mem_used,mem_limit,disk_free,disk_free_limit,net_ticktime,uptime";
/// `GET /api/queues?columns=` (what `Queue` reads).
pub const QUEUES: &str = "/api/queues?columns=name,vhost,type,leader,members,online,messages,node,state,durable,exclusive,auto_delete";
/// Answers 503 with the queues that would lose their majority were the node asked stopped.
pub const CRITICAL: &str = "/api/health/checks/node-is-quorum-critical";
/// The node's own quorum queue members' Raft state, and the queues it leads (only a queue's
/// leader reports its message counts), from the Prometheus plugin: the node's own word, with
/// no call to its peers (the management API waits on a silent peer until it is declared
/// down).
pub const METRICS: &str = "/metrics/detailed?family=ra_metrics&family=queue_coarse_metrics";

/// A node as the node asked sees it (a node it cannot reach is `running: false` and nothing
/// else).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Node {
    pub name: String,
    #[serde(default)]
    pub running: bool,
    /// The nodes it was partitioned from (set once the partition heals under `ignore`).
    #[serde(default)]
    pub partitions: Vec<String>,
    #[serde(default)]
    pub mem_alarm: bool,
    #[serde(default)]
    pub disk_free_alarm: bool,
    pub mem_used: Option<u64>,
    pub mem_limit: Option<u64>,
    pub disk_free: Option<u64>,
    pub disk_free_limit: Option<u64>,
    pub net_ticktime: Option<u64>,
    /// Milliseconds since the node started.
    pub uptime: Option<u64>,
}

pub fn nodes(json: &str) -> Result<Vec<Node>, String> {
    serde_json::from_str(json).map_err(|e| format!("/api/nodes: {e}"))
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Queue {
    pub name: String,
    pub vhost: String,
    /// quorum, classic, stream.
    pub kind: String,
    pub leader: Option<String>,
    pub members: Vec<String>,
    pub online: Vec<String>,
    pub messages: Option<u64>,
    /// Where a classic queue lives.
    pub node: Option<String>,
    pub exclusive: bool,
    pub auto_delete: bool,
}

impl Queue {
    pub fn quorum(&self) -> bool {
        self.kind == "quorum"
    }

    /// A queue that lives on one node and dies with it (an exclusive or auto-delete one is
    /// its client's, and goes with its connection anyway).
    pub fn unreplicated(&self) -> bool {
        self.kind == "classic" && !self.exclusive && !self.auto_delete
    }

    /// "kbz.failover" in the default vhost, "vhost/name" elsewhere.
    pub fn label(&self) -> String {
        if self.vhost == "/" {
            self.name.clone()
        } else {
            format!("{}/{}", self.vhost, self.name)
        }
    }
}

/// One JSON object's fields in the order sent, duplicates kept: RabbitMQ 3.10 sends a
/// queue's `online` twice while one of its members is down (captured:
/// queues-one-stopped-online-twice.json), the first right, the second stale.
struct Fields(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

pub fn queues(json: &str) -> Result<Vec<Queue>, String> {
    let objects: Vec<Fields> =
        serde_json::from_str(json).map_err(|e| format!("/api/queues: {e}"))?;
    Ok(objects.into_iter().map(queue).collect())
}

fn queue(Fields(fields): Fields) -> Queue {
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(String::from))
            .collect()
    };
    let mut q = Queue::default();
    let mut online: Option<Vec<String>> = None;
    for (key, v) in &fields {
        let text = || v.as_str().map(String::from);
        match key.as_str() {
            "name" => q.name = text().unwrap_or_default(),
            "vhost" => q.vhost = text().unwrap_or_default(),
            "type" => q.kind = text().unwrap_or_default(),
            "leader" => q.leader = text(),
            "members" => q.members = names(v),
            // Of two lists, only members both name are online.
            "online" => {
                let these = names(v);
                online = Some(match online {
                    Some(seen) => seen.into_iter().filter(|n| these.contains(n)).collect(),
                    None => these,
                });
            }
            "messages" => q.messages = v.as_u64(),
            "node" => q.node = text(),
            "exclusive" => q.exclusive = v.as_bool().unwrap_or(false),
            "auto_delete" => q.auto_delete = v.as_bool().unwrap_or(false),
            _ => {}
        }
    }
    q.online = online.unwrap_or_default();
    q
}

/// `node-is-quorum-critical`: None when the node may be lost, else the queues that would
/// lose their majority with it.
pub fn critical(json: &str) -> Result<Option<Vec<String>>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("{CRITICAL}: {e}"))?;
    match v["status"].as_str() {
        Some("ok") => Ok(None),
        Some("failed") => Ok(Some(
            v["queues"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|q| {
                    let name = q["name"].as_str()?;
                    Some(match q["virtual_host"].as_str() {
                        Some("/") | None => name.to_string(),
                        Some(vh) => format!("{vh}/{name}"),
                    })
                })
                .collect(),
        )),
        _ => Err(format!("{CRITICAL}: no status in {json:.80}")),
    }
}

/// Each member's own Raft members, by host.
pub type Rafts = BTreeMap<String, BTreeMap<(String, String), Raft>>;

/// One node's member of a quorum queue, as Raft has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Raft {
    pub term: Option<u64>,
    pub commit: Option<u64>,
    pub applied: Option<u64>,
    /// This node leads the queue.
    pub leads: bool,
}

/// The node's quorum queue members by (vhost, queue), from its Prometheus text.
pub fn raft(text: &str) -> BTreeMap<(String, String), Raft> {
    let mut out: BTreeMap<(String, String), Raft> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((metric, rest)) = line.split_once('{') else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
            let len = labels[start..].find('"')?;
            Some(labels[start..start + len].to_string())
        };
        let (Some(vhost), Some(queue)) = (label("vhost"), label("queue")) else {
            continue;
        };
        let slot = out.entry((vhost, queue)).or_default();
        let v = Some(value as u64);
        match metric {
            "rabbitmq_detailed_raft_term_total" => slot.term = v,
            "rabbitmq_detailed_raft_log_commit_index" => slot.commit = v,
            "rabbitmq_detailed_raft_log_last_applied_index" => slot.applied = v,
            "rabbitmq_detailed_queue_messages" => slot.leads = true,
            _ => {}
        }
    }
    out
}

/// `cluster_partition_handling` as the node's config lines set it; RabbitMQ's default,
/// `ignore`, when none does.
pub fn partition_handling(config: &str) -> String {
    config
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "cluster_partition_handling").then(|| v.trim().to_string())
        })
        .next_back()
        .unwrap_or_else(|| "ignore".into())
}

/// `rabbit@queue-01` -> `queue-01`.
pub fn host_of(node: &str) -> &str {
    node.split_once('@').map_or(node, |(_, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::fixture;

    #[test]
    fn healthy_nodes_and_the_failover_queue() {
        let n = nodes(&fixture("rabbitmq/nodes-healthy.json")).unwrap();
        assert_eq!(n.len(), 3);
        assert!(
            n.iter()
                .all(|n| n.running && !n.mem_alarm && n.partitions.is_empty())
        );
        assert_eq!(n[0].net_ticktime, Some(10));
        let q = queues(&fixture("rabbitmq/queues-healthy.json")).unwrap();
        let f = q.iter().find(|q| q.name == "kbz.failover").unwrap();
        assert!(f.quorum());
        assert_eq!(f.members.len(), 3);
        assert_eq!(f.online.len(), 3);
        assert!(f.leader.is_some());
    }

    #[test]
    fn a_stopped_member_is_not_online_even_when_rabbitmq_says_it_twice() {
        let text = fixture("rabbitmq/queues-one-stopped-online-twice.json");
        assert_eq!(
            text.matches("\"online\"").count(),
            2,
            "the capture's duplicate"
        );
        let q = queues(&text).unwrap();
        assert_eq!(q[0].online, ["rabbit@queue-01", "rabbit@queue-02"]);
        let n = nodes(&fixture("rabbitmq/nodes-one-stopped.json")).unwrap();
        assert!(
            !n.iter()
                .find(|n| n.name == "rabbit@queue-03")
                .unwrap()
                .running
        );
    }

    #[test]
    fn classic_and_two_member_queues() {
        let q = queues(&fixture("rabbitmq/queues-two-members-classic.json")).unwrap();
        let classic = q.iter().find(|q| q.name == "kbz.capture.classic").unwrap();
        assert!(classic.unreplicated());
        assert_eq!(classic.messages, Some(3));
        assert_eq!(classic.node.as_deref(), Some("rabbit@queue-01"));
        let two = q.iter().find(|q| q.name == "kbz.capture.two").unwrap();
        assert_eq!(two.members.len(), 2);
    }

    #[test]
    fn alarms_criticality_and_terms() {
        let n = nodes(&fixture("rabbitmq/nodes-memory-alarm.json")).unwrap();
        assert_eq!(
            n.iter()
                .filter(|n| n.mem_alarm)
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            ["rabbit@queue-02"]
        );
        assert_eq!(
            critical(&fixture("rabbitmq/critical-healthy.json")),
            Ok(None)
        );
        assert_eq!(
            critical(&fixture("rabbitmq/critical-one-stopped.json")),
            Ok(Some(vec!["kbz.failover".to_string()]))
        );
        let key = ("/".to_string(), "kbz.failover".to_string());
        let before = raft(&fixture("rabbitmq/metrics-leader.txt"))[&key];
        let after = raft(&fixture("rabbitmq/metrics-new-leader.txt"))[&key];
        assert!(before.term.is_some() && after.term > before.term);
        assert!(after.commit.is_some() && after.applied.is_some());
        assert_eq!(
            partition_handling(&fixture("rabbitmq/config-pause-minority.txt")),
            "pause_minority"
        );
        assert_eq!(partition_handling(""), "ignore");
    }
}
