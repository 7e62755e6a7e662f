//! What each cluster really is, from its services' own machine-readable outputs: members with
//! their live role, state, lag and epoch; the leader; the quorum and how many more losses it
//! survives; and warnings that say what is wrong, why, and the fix. One model for every
//! technology; each technology's parsers are in its folder under `src/tech/`.

pub mod host;
pub mod views;

use crate::inventory::Technology;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    /// The inventory host name when known, else the address the service reports.
    pub host: String,
    /// The live role: leader, replica, master, sentinel...
    pub role: String,
    /// running, streaming, stopped, down...
    pub state: String,
    pub up: bool,
    /// Replication lag as the service reports it (bytes for PostgreSQL, offset for Redis).
    pub lag: Option<u64>,
    /// Timeline (Patroni), config epoch (Sentinel).
    pub epoch: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quorum {
    /// What votes: etcd members, Sentinels.
    pub members: usize,
    pub up: usize,
    /// How many must agree for the cluster to act.
    pub needed: usize,
}

impl Quorum {
    /// How many more members can be lost with the cluster still able to act.
    pub fn survives(&self) -> usize {
        self.up.saturating_sub(self.needed)
    }

    pub fn reached(&self) -> bool {
        self.up >= self.needed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// It would still fail over, but something is off.
    Warning,
    /// A loss now would not fail over, or the cluster is not serving.
    Critical,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub severity: Severity,
    /// One sentence: what is wrong.
    pub what: String,
    /// Why it matters.
    pub why: String,
    /// What to do.
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub technology: Technology,
    pub members: Vec<Member>,
    pub leader: Option<String>,
    /// "timeline", "config-epoch": the registry's name for it (kept in the JSON for readers).
    pub epoch_name: &'static str,
    pub epoch: Option<u64>,
    pub quorum: Option<Quorum>,
    pub warnings: Vec<Warning>,
    /// Load balancers: backend -> the servers it sends traffic to.
    pub routes: std::collections::BTreeMap<String, Vec<String>>,
    /// Replicated groups inside the cluster, each with its own leader and majority
    /// (RabbitMQ's quorum queues).
    pub groups: Vec<Group>,
    /// Its members are peers, with no leader by design (ProxySQL's proxies: the registry's
    /// `peers`): no leader is not a fault.
    pub peers: bool,
}

/// One replicated group (a quorum queue): its own leader, members and those online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    pub leader: Option<String>,
    pub members: Vec<String>,
    pub online: Vec<String>,
    /// Its own epoch (a quorum queue's Raft term), as its leader's node says.
    pub epoch: Option<u64>,
}

impl Group {
    /// "kbz.failover: leader queue-01 · 3/3 online · term 4".
    pub fn summary(&self, epoch_name: &str) -> String {
        let mut parts = vec![match &self.leader {
            Some(l) => format!("leader {l}"),
            None => "NO LEADER".into(),
        }];
        parts.push(format!(
            "{}/{} online",
            self.online.len(),
            self.members.len()
        ));
        if let Some(e) = self.epoch {
            parts.push(format!("{epoch_name} {e}"));
        }
        format!("{}: {}", self.name, parts.join(" · "))
    }
}

impl ClusterStatus {
    /// "3/3 up · leader db-master-01 · survives 1 loss · timeline 4".
    pub fn summary(&self) -> String {
        let up = self.members.iter().filter(|m| m.up).count();
        let mut parts = vec![format!("{up}/{} up", self.members.len())];
        match &self.leader {
            Some(l) => parts.push(format!("leader {l}")),
            None if self.peers => {}
            None => parts.push("NO LEADER".into()),
        }
        if let Some(q) = self.quorum {
            parts.push(if q.reached() {
                format!(
                    "survives {} loss{}",
                    q.survives(),
                    if q.survives() == 1 { "" } else { "es" }
                )
            } else {
                format!("NO QUORUM ({}/{} of {} needed)", q.up, q.members, q.needed)
            });
        }
        if let Some(e) = self.epoch {
            parts.push(format!("{} {e}", self.epoch_name));
        }
        parts.join(" · ")
    }

    /// The worst warning, if any (for the exit code of `kbz doctor`).
    pub fn worst(&self) -> Option<Severity> {
        self.warnings.iter().map(|w| w.severity).max()
    }
}

/// The middle of three round trips: the first on a new connection can wait behind the
/// client's own setup commands.
pub fn median(mut rtts: Vec<Duration>) -> Duration {
    rtts.sort();
    rtts.get(rtts.len() / 2).copied().unwrap_or_default()
}

/// Maps a service-reported address (`10.0.0.5`, `10.0.0.5:6379`) to the inventory's host
/// name, for a model people read in host names.
pub fn host_name(address: &str, hosts: &[(String, String)]) -> String {
    let ip = address.rsplit_once(':').map_or(address, |(ip, _)| ip);
    hosts
        .iter()
        .find(|(_, a)| a == ip)
        .map_or_else(|| address.to_string(), |(n, _)| n.clone())
}

/// The lab's Redis hosts, as the captured fixtures name them.
#[cfg(test)]
pub(crate) fn redis_hosts() -> Vec<(String, String)> {
    (123..=125)
        .enumerate()
        .map(|(i, o)| (format!("redis-0{}", i + 1), format!("10.203.0.{o}")))
        .collect()
}

#[cfg(test)]
pub(crate) fn fixture(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/probes")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}
