//! The RabbitMQ cluster from its members' readings: each member's view of the nodes and
//! queues (a node cut off from the majority is paused and gives none), made one by
//! `Views`, then what only the members themselves say: which is quorum-critical, which
//! is paused, how each handles a partition.

use super::QUEUE;
use super::api::{self, Node, Queue, Rafts, host_of};
use super::doctor::{mark_paused, node_warnings, online, own_warnings, queue_warnings};
use crate::inventory::Technology;
use crate::probe::views::Views;
use crate::probe::{ClusterStatus, Group, Member, Quorum, Severity, Warning};
use crate::watch::{Readings, failure, section};
use std::collections::BTreeMap;

pub fn status(r: Readings<'_>) -> Result<ClusterStatus, String> {
    let rafts: Rafts = r
        .readings
        .iter()
        .filter_map(|(on, s)| Some((on.clone(), api::raft(section(s.as_ref().ok()?, 3)?))))
        .collect();
    let mut views = Views::default();
    let mut paused = Vec::new();
    let mut lists: Vec<Vec<Node>> = Vec::new();
    for (on, reading) in &r.readings {
        let s = match reading {
            Ok(s) => s,
            Err(e) => {
                views.add(Err(e.clone()), |_| false);
                continue;
            }
        };
        match section(s, 0).map(api::nodes) {
            Some(Ok(nodes)) => {
                let queues = section(s, 1).map(api::queues).and_then(Result::ok);
                views.add(Ok(view(&r, on, &nodes, queues, &rafts)), |_| false);
                lists.push(nodes);
            }
            _ if section(s, 5) == Some("listening") => paused.push(on.clone()),
            parsed => {
                let why = match parsed {
                    Some(Err(e)) => e,
                    _ => failure(s, 0).to_string(),
                };
                views.unreadable(
                    format!("{on}: its view of the cluster cannot be read: {why}"),
                    format!(
                        "check RabbitMQ on {on}: `systemctl status rabbitmq-server`, `rabbitmq-diagnostics -q status`"
                    ),
                );
            }
        }
    }
    let mut st = match views.believed(&r.cluster.name) {
        Ok(st) => st,
        Err(e) if rafts.is_empty() => return Err(e),
        Err(_) => own_words(&r, &rafts),
    };
    running_by_majority(&mut st, &lists);
    for on in &paused {
        mark_paused(&mut st, on);
    }
    st.warnings.extend(own_warnings(&r));
    Ok(st)
}

/// One member's view: every inventory host as this node sees its node, the leader (the
/// failover queue's, else the node leading most quorum queues), its term as this node's
/// own member has it, and the queues' and nodes' warnings.
fn view(
    r: &Readings<'_>,
    on: &str,
    nodes: &[Node],
    queues: Option<Vec<Queue>>,
    rafts: &Rafts,
) -> ClusterStatus {
    let queues = queues.unwrap_or_default();
    let leader = claimed(rafts).or_else(|| leader(&queues));
    let key = ("/".to_string(), QUEUE.to_string());
    let leader_commit = leader
        .as_ref()
        .and_then(|l| rafts.get(l)?.get(&key)?.commit);
    let mut members: Vec<Member> = r
        .cluster
        .hosts
        .iter()
        .map(|h| {
            let node = nodes.iter().find(|n| host_of(&n.name) == h);
            let applied = rafts.get(h).and_then(|m| m.get(&key)?.applied);
            Member {
                host: h.clone(),
                role: if leader.as_deref() == Some(h) {
                    "leader".into()
                } else {
                    "member".into()
                },
                state: match node {
                    None => "not in the cluster".into(),
                    Some(n) if !n.running => "not running".into(),
                    Some(n) if n.mem_alarm || n.disk_free_alarm => "running, alarm".into(),
                    Some(_) => "running".into(),
                },
                up: node.is_some_and(|n| n.running),
                lag: leader_commit.zip(applied).map(|(c, a)| c.saturating_sub(a)),
                epoch: rafts.get(h).and_then(|m| m.get(&key)?.term),
            }
        })
        .collect();
    // Nodes the cluster has that the inventory does not.
    for n in nodes
        .iter()
        .filter(|n| !r.cluster.hosts.iter().any(|h| h == host_of(&n.name)))
    {
        members.push(Member {
            host: n.name.clone(),
            role: "member (not in the inventory)".into(),
            state: if n.running { "running" } else { "not running" }.into(),
            up: n.running,
            lag: None,
            epoch: None,
        });
    }
    let up = nodes.iter().filter(|n| n.running).count();
    let mut warnings = node_warnings(nodes);
    warnings.extend(queue_warnings(&queues, nodes, rafts));
    let epoch = leader
        .as_ref()
        .and_then(|l| rafts.get(l)?.get(&key)?.term)
        .or_else(|| rafts.get(on).and_then(|m| m.get(&key)?.term));
    ClusterStatus {
        cluster: r.cluster.name.clone(),
        technology: Technology::Rabbitmq,
        leader,
        epoch_name: super::EPOCH,
        // The leader's own term; without it, this node's (it may lag a moment behind).
        epoch,
        quorum: Some(Quorum {
            members: nodes.len(),
            up,
            needed: nodes.len() / 2 + 1,
        }),
        members,
        warnings,
        routes: BTreeMap::new(),
        groups: groups(&queues, nodes, rafts),
        peers: false,
    }
}

/// The quorum queues: each its leader, members and members online (on a running node),
/// its term as its leader's node says.
fn groups(queues: &[Queue], nodes: &[Node], rafts: &Rafts) -> Vec<Group> {
    let hosts = |names: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        names.map(|m| host_of(m).to_string()).collect()
    };
    queues
        .iter()
        .filter(|q| q.quorum())
        .map(|q| {
            let key = (q.vhost.clone(), q.name.clone());
            let leader = leading(rafts, &key)
                .or_else(|| q.leader.as_deref().map(|l| host_of(l).to_string()));
            Group {
                name: q.label(),
                epoch: leader.as_ref().and_then(|l| rafts.get(l)?.get(&key)?.term),
                leader,
                members: hosts(&mut q.members.iter()),
                online: hosts(&mut online(q, nodes, rafts).into_iter()),
            }
        })
        .collect()
}

/// The node that says it leads the failover queue (of two, the one at the higher term: the
/// other was cut off and has not heard yet).
fn claimed(rafts: &Rafts) -> Option<String> {
    leading(rafts, &("/".to_string(), QUEUE.to_string()))
}

/// The node that says it leads the queue `key`, at the highest term.
fn leading(rafts: &Rafts, key: &(String, String)) -> Option<String> {
    rafts
        .iter()
        .filter_map(|(h, m)| m.get(key).filter(|r| r.leads).map(|r| (r.term, h)))
        .max()
        .map(|(_, h)| h.clone())
}

/// The cluster from its nodes' own words alone, when no node's management API answers (a
/// peer gone silent holds every API call until RabbitMQ declares it down, after
/// net_ticktime): a node that reports its Raft members runs, the leader is the node that
/// says it leads.
fn own_words(r: &Readings<'_>, rafts: &Rafts) -> ClusterStatus {
    let key = ("/".to_string(), QUEUE.to_string());
    let leader = claimed(rafts);
    let leader_commit = leader
        .as_ref()
        .and_then(|l| rafts.get(l)?.get(&key)?.commit);
    let members: Vec<Member> = r
        .cluster
        .hosts
        .iter()
        .map(|h| {
            let own = rafts.get(h).and_then(|m| m.get(&key));
            Member {
                host: h.clone(),
                role: if leader.as_deref() == Some(h) {
                    "leader"
                } else {
                    "member"
                }
                .into(),
                state: if rafts.contains_key(h) {
                    "running"
                } else {
                    "not answering"
                }
                .into(),
                up: rafts.contains_key(h),
                lag: leader_commit
                    .zip(own.and_then(|o| o.applied))
                    .map(|(c, a)| c.saturating_sub(a)),
                epoch: own.and_then(|o| o.term),
            }
        })
        .collect();
    let n = r.cluster.hosts.len();
    ClusterStatus {
        cluster: r.cluster.name.clone(),
        technology: Technology::Rabbitmq,
        epoch: leader.as_ref().and_then(|l| rafts.get(l)?.get(&key)?.term),
        leader,
        epoch_name: super::EPOCH,
        quorum: Some(Quorum {
            members: n,
            up: members.iter().filter(|m| m.up).count(),
            needed: n / 2 + 1,
        }),
        members,
        warnings: vec![Warning {
            severity: Severity::Warning,
            what: "no node's management API answers: roles from each node's own Raft metrics".into(),
            why: "a node gone silent holds the API on every node until RabbitMQ declares it down (net_ticktime)".into(),
            fix: "wait up to net_ticktime; if it lasts, check the nodes (`rabbitmq-diagnostics -q status`)".into(),
        }],
        routes: BTreeMap::new(),
        groups: Vec::new(),
        peers: false,
    }
}

/// The failover queue's leader's host; without it, the host leading most quorum queues.
fn leader(queues: &[Queue]) -> Option<String> {
    let host = |q: &Queue| q.leader.as_deref().map(|l| host_of(l).to_string());
    if let Some(q) = queues.iter().find(|q| q.vhost == "/" && q.name == QUEUE) {
        return host(q);
    }
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for h in queues.iter().filter(|q| q.quorum()).filter_map(host) {
        *count.entry(h).or_default() += 1;
    }
    count.into_iter().max_by_key(|(_, n)| *n).map(|(h, _)| h)
}

/// Whether each node runs, as most nodes that list it say: the views share one leader and
/// term (the nodes' own word), so the believed one is any of them, and a node cut off from
/// the others, or back from a freeze as a partition of its own, sees itself running and the
/// others not.
fn running_by_majority(st: &mut ClusterStatus, lists: &[Vec<Node>]) {
    for m in &mut st.members {
        let said: Vec<bool> = lists
            .iter()
            .filter_map(|l| l.iter().find(|n| host_of(&n.name) == m.host))
            .map(|n| n.running)
            .collect();
        let running = said.iter().filter(|r| **r).count();
        let down = said.len() - running;
        if running > down && !m.up {
            m.up = true;
            m.state = "running".into();
        } else if down > running && m.up {
            m.up = false;
            m.state = "not running".into();
        }
    }
    if let Some(q) = st.quorum.as_mut() {
        q.up = st.members.iter().filter(|m| m.up).count().min(q.members);
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
