//! Doctor's rules for RabbitMQ: what is wrong with the nodes (partitions, alarms, an even
//! count), the queues (quorum queues short of members or of a majority online, classic queues
//! that die with their node), and what each member says of itself (quorum-critical, paused,
//! how it handles a partition). Each warning says why it matters and the fix.

use super::api::{self, Node, Queue, Rafts, host_of};
use crate::probe::{ClusterStatus, Severity, Warning};
use crate::watch::{Readings, section};

const PARTITIONED: &str = " was partitioned from ";

/// The partition a node or its peers still record with `host` on the other side, in words
/// ("partitioned from queue-01"): RabbitMQ's pause_minority never ends one found after it
/// healed (a node frozen past net_ticktime), a restart of the node does.
pub fn stuck(s: &ClusterStatus, host: &str) -> Option<String> {
    s.warnings
        .iter()
        .filter(|w| w.severity == Severity::Critical)
        .filter_map(|w| w.what.split_once(PARTITIONED))
        .find_map(|(node, from)| {
            let from: Vec<&str> = from.split(", ").collect();
            if node == host {
                Some(format!("partitioned from {}", from.join(", ")))
            } else {
                from.contains(&host)
                    .then(|| format!("partitioned from {node}"))
            }
        })
}

pub(super) fn node_warnings(nodes: &[Node]) -> Vec<Warning> {
    let mut out = Vec::new();
    for n in nodes {
        let h = host_of(&n.name);
        if !n.partitions.is_empty() {
            let from: Vec<&str> = n.partitions.iter().map(|p| host_of(p)).collect();
            out.push(Warning {
                severity: Severity::Critical,
                what: format!("{h}{PARTITIONED}{}", from.join(", ")),
                why: "the nodes run as separate clusters until restarted; what classic queues took on the side dropped is lost with the restart. pause_minority ends no partition that healed before it paused the minority (a node frozen, or a cut shorter than net_ticktime on one side): only autoheal acts on those".into(),
                fix: format!("restart the nodes of the side to drop (the smaller), one at a time: `systemctl restart rabbitmq-server` on {h} or on its peers"),
            });
        }
        if n.mem_alarm {
            out.push(Warning {
                severity: Severity::Critical,
                what: format!(
                    "{h}: memory alarm ({} of {} MB used)",
                    mb(n.mem_used),
                    mb(n.mem_limit)
                ),
                why: "every publisher of the cluster is blocked until it clears".into(),
                fix: format!("on {h}: `rabbitmq-diagnostics -q memory_breakdown`; drain the queues holding memory, or raise vm_memory_high_watermark"),
            });
        }
        if n.disk_free_alarm {
            out.push(Warning {
                severity: Severity::Critical,
                what: format!(
                    "{h}: disk alarm ({} MB free, limit {} MB)",
                    mb(n.disk_free),
                    mb(n.disk_free_limit)
                ),
                why: "every publisher of the cluster is blocked until it clears".into(),
                fix: format!("free space under /var/lib/rabbitmq on {h}, or lower disk_free_limit"),
            });
        }
    }
    if !nodes.is_empty() && nodes.len().is_multiple_of(2) {
        out.push(Warning {
            severity: Severity::Warning,
            what: format!("the cluster has {} nodes, an even number", nodes.len()),
            why: format!("a split in two halves leaves no majority: pause_minority pauses all {} nodes; one node more or fewer survives as many losses", nodes.len()),
            fix: "add a node or remove one (`rabbitmqctl forget_cluster_node`)".into(),
        });
    }
    out
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| (b / 1_000_000).to_string())
}

/// The members of `q` online: by each node's own word where it names the queue (its Raft
/// member runs), else as the API says, on a running node. The API's lists come from
/// statistics, and lag behind a node that just came back; a node's Prometheus text can also
/// leave out a member that runs (CI saw a freshly joined node's do so for over 30 s while
/// the API and module 5's verify had it online), so its silence alone is not "offline".
pub(super) fn online<'a>(q: &'a Queue, nodes: &[Node], rafts: &Rafts) -> Vec<&'a String> {
    let key = (q.vhost.clone(), q.name.clone());
    q.members
        .iter()
        .filter(|m| {
            rafts
                .get(host_of(m))
                .is_some_and(|own| own.contains_key(&key))
                || (q.online.contains(m) && nodes.iter().any(|n| &&n.name == m && n.running))
        })
        .collect()
}

pub(super) fn queue_warnings(queues: &[Queue], nodes: &[Node], rafts: &Rafts) -> Vec<Warning> {
    let mut out = Vec::new();
    for q in queues.iter().filter(|q| q.quorum()) {
        let online = online(q, nodes, rafts);
        let missing: Vec<&str> = nodes
            .iter()
            .filter(|n| !q.members.contains(&n.name))
            .map(|n| n.name.as_str())
            .collect();
        let grow = |on: &[&str]| {
            on.iter()
                .map(|n| {
                    format!(
                        "rabbitmq-queues grow {n} all --queue-pattern '^{}$'",
                        q.name
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        if q.members.len() < 3 {
            out.push(Warning {
                severity: Severity::Critical,
                what: format!("quorum queue {} has {} member(s)", q.label(), q.members.len()),
                why: "with fewer than 3 members, losing one stops it: it needs a majority of its members".into(),
                fix: if missing.is_empty() { "add nodes, then grow the queue onto them".into() } else { grow(&missing) },
            });
        } else if !missing.is_empty() {
            out.push(Warning {
                severity: Severity::Warning,
                what: format!("quorum queue {} has {} members for {} nodes", q.label(), q.members.len(), nodes.len()),
                why: "RabbitMQ 3.10 never adds members by itself (a node that joined later holds none)".into(),
                fix: grow(&missing),
            });
        }
        let majority = q.members.len() / 2 + 1;
        if online.len() < q.members.len() {
            let offline: Vec<&str> = q
                .members
                .iter()
                .filter(|m| !online.contains(m))
                .map(|m| host_of(m))
                .collect();
            out.push(Warning {
                severity: if online.len() < majority {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                what: format!(
                    "quorum queue {}: {} of {} members online ({} offline)",
                    q.label(),
                    online.len(),
                    q.members.len(),
                    offline.join(", ")
                ),
                why: if online.len() < majority {
                    "no majority of its members: it accepts and delivers nothing".into()
                } else {
                    format!(
                        "one more loss of {} member(s) stops it",
                        online.len() + 1 - majority
                    )
                },
                fix: format!(
                    "start RabbitMQ on {} (`systemctl start rabbitmq-server`)",
                    offline.join(", ")
                ),
            });
        }
    }
    let classic: Vec<&Queue> = queues.iter().filter(|q| q.unreplicated()).collect();
    if !classic.is_empty() {
        let named: Vec<String> = classic
            .iter()
            .take(3)
            .map(|q| {
                format!(
                    "{} on {} ({} message(s))",
                    q.label(),
                    q.node.as_deref().map_or("?", host_of),
                    q.messages.map_or("?".into(), |m| m.to_string())
                )
            })
            .collect();
        let more = classic.len().saturating_sub(3);
        out.push(Warning {
            severity: Severity::Warning,
            what: format!(
                "{} classic queue(s), not replicated: {}{}",
                classic.len(),
                named.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
            why: "a classic queue lives on one node: its messages are unavailable while that node is down, and lost with its disk".into(),
            fix: "declare them as quorum queues (x-queue-type = quorum) and move their publishers and consumers: a queue's type cannot be changed in place".into(),
        });
    }
    out
}

/// A member whose VM runs while its API does not: paused by pause_minority (cut from the
/// majority) or still starting.
pub(super) fn mark_paused(st: &mut ClusterStatus, on: &str) {
    if let Some(m) = st.members.iter_mut().find(|m| m.host == on) {
        m.state = "paused (cannot see a majority) or starting".into();
        m.up = false;
    }
    st.warnings.push(Warning {
        severity: Severity::Critical,
        what: format!("{on} is cut off from the cluster: its node runs but does not serve"),
        why: "pause_minority paused it (it cannot see a majority of the nodes), or it is still starting: its clients are refused and its queue members are offline".into(),
        fix: format!("check the network between {on} and the other nodes (`rabbitmq-diagnostics -q cluster_status` on {on}); it resumes by itself once it sees a majority"),
    });
}

/// What each member says of itself: whether losing it now stops a queue, and how it
/// handles a partition.
pub(super) fn own_warnings(r: &Readings<'_>) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut ignoring = Vec::new();
    for (on, reading) in &r.readings {
        let Ok(s) = reading else { continue };
        if let Some(Ok(Some(queues))) = section(s, 2).map(api::critical) {
            out.push(Warning {
                severity: Severity::Warning,
                what: format!("{on} is quorum-critical: losing it now stops {}", queues.join(", ")),
                why: "those queues have only a bare majority of members online, and one of them is on this node".into(),
                fix: format!("do not stop or restart {on} until the queues' other members are online again (`rabbitmq-queues quorum_status <queue>`)"),
            });
        }
        if section(s, 0).is_some() || section(s, 5).is_some() {
            let handling = api::partition_handling(section(s, 4).unwrap_or(""));
            if handling == "ignore" {
                ignoring.push(on.clone());
            }
        }
    }
    if !ignoring.is_empty() {
        out.push(Warning {
            severity: Severity::Warning,
            what: format!("cluster_partition_handling is ignore on {}", ignoring.join(", ")),
            why: "in a partition both sides keep serving: publishers on the side that loses lose their messages when the nodes are restarted".into(),
            fix: "set cluster_partition_handling = pause_minority in /etc/rabbitmq/rabbitmq.conf (module 5 does) and restart the nodes one at a time".into(),
        });
    }
    out
}
