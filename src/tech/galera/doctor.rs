//! Doctor's rules for Galera: members outside the Primary component (non-Primary, or a
//! second Primary: a split), a full stop and who can bootstrap from it, an even view,
//! members busy as donors or held by flow control, and the settings that lose acknowledged
//! commits in a crash or give stale reads. Each warning says why it matters and the fix.

use super::node::Node;
use crate::probe::{Severity, Warning};

/// A member Donor/Desynced longer than this (seconds) is stuck so, not transferring.
const DONOR_LONG: u64 = 60;

/// "1 min", "12 min", "45 s".
fn minutes(s: u64) -> String {
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min", s / 60)
    }
}

/// Above this share of the time paused by flow control, writes stall noticeably.
const FLOW_CONTROL_PAUSED: f64 = 0.1;

pub(super) fn warnings(nodes: &[Node], main: Option<&(String, u64)>) -> Vec<Warning> {
    let mut out = Vec::new();
    for n in nodes {
        let h = &n.host;
        if n.wsrep.is_some() && !n.primary() {
            out.push(Warning {
                severity: Severity::Critical,
                what: match n.get("wsrep_cluster_status") {
                    Some("non-Primary") | None => format!("{h} is non-Primary"),
                    Some(other) => format!("{h} is non-Primary ({other})"),
                },
                why: "it refuses every read and write (ERROR 1047) until it is back in a Primary component: it is cut off from the majority, or the majority is gone".into(),
                fix: format!("check the network between {h} and its peers (`SHOW STATUS LIKE 'wsrep_incoming_addresses'`); if no member is Primary any more: `kbz install --module 7` bootstraps from the member with the highest seqno"),
            });
        } else if n.primary()
            && let Some(m) = main
            && (n.get("wsrep_cluster_state_uuid").unwrap_or("") != m.0 || n.conf_id() != Some(m.1))
        {
            out.push(Warning {
                severity: Severity::Critical,
                what: format!("{h} is in another Primary component (conf_id {}) than the majority's (conf_id {})", n.conf_id().unwrap_or(0), m.1),
                why: "two components taking writes is a split brain: what each side commits the other never sees".into(),
                fix: format!("stop MariaDB on the smaller side (`systemctl stop mariadb` on {h} and its component's members), then start them again to join by SST"),
            });
        }
        if n.wsrep.is_none() && nodes.iter().any(|o| o.wsrep.is_some()) {
            out.push(Warning {
                severity: Severity::Warning,
                what: format!("{h}: MariaDB does not answer ({})", n.error.as_deref().unwrap_or("no answer")),
                why: "the cluster runs one member short: one more loss may leave no majority".into(),
                fix: format!("on {h}: `systemctl status mariadb`, then `systemctl start mariadb` (it rejoins by IST or SST)"),
            });
        }
        if n.primary() && n.state().starts_with("Donor") {
            let why = "it is sending a state transfer to a joining member, or was desynced by hand: with rsync SST it takes no write until the transfer ends, and a desynced member falls behind";
            let fix = format!(
                "if no member is joining (`SHOW STATUS LIKE 'wsrep_local_state_comment'` on each), it was desynced: `SET GLOBAL wsrep_desync = OFF` on {h}"
            );
            match n.state_for {
                // A transfer of a fleet's data takes minutes at most; shorter is one running.
                Some(s) if s < DONOR_LONG => {}
                Some(s) => out.push(Warning {
                    severity: Severity::Warning,
                    what: format!("{h} has been {} for {}", n.state(), minutes(s)),
                    why: why.into(),
                    fix,
                }),
                None => out.push(Warning {
                    severity: Severity::Warning,
                    what: format!(
                        "{h} is {} (for how long: module 7's health endpoint does not say)",
                        n.state()
                    ),
                    why: why.into(),
                    fix,
                }),
            }
        }
        if let Some(p) = n
            .get("wsrep_flow_control_paused")
            .and_then(|v| v.parse::<f64>().ok())
            && p > FLOW_CONTROL_PAUSED
        {
            out.push(Warning {
                severity: Severity::Warning,
                what: format!("{h}: replication paused by flow control {:.0}% of the time", p * 100.0),
                why: "a member applying too slowly makes every member wait: the cluster's writes stall".into(),
                fix: "find the slow member (the highest `wsrep_local_recv_queue_avg`) and what slows it (disk, a long transaction); raise wsrep_slave_threads".into(),
            });
        }
    }
    out.extend(full_stop(nodes));
    if let Some(size) = nodes
        .iter()
        .filter(|n| n.primary())
        .filter_map(Node::size)
        .max()
        && size % 2 == 0
    {
        out.push(Warning {
            severity: Severity::Warning,
            what: format!("the Primary component has {size} members, an even number"),
            why: format!("a split in two halves leaves no majority: all {size} members become non-Primary and refuse writes"),
            fix: "add a member, or a Galera arbitrator (garbd), or remove one".into(),
        });
    }
    out.extend(settings(nodes));
    out
}

/// Every member reachable but none running MariaDB: who can bootstrap, and how.
fn full_stop(nodes: &[Node]) -> Option<Warning> {
    if nodes.iter().any(|n| n.wsrep.is_some()) || nodes.iter().all(|n| n.grastate.is_none()) {
        return None;
    }
    let seqno = |n: &Node| {
        let g = n.grastate.as_ref()?;
        g.seqno.filter(|s| *s >= 0).or(g.recovered)
    };
    let safe = nodes.iter().find(|n| {
        n.grastate
            .as_ref()
            .is_some_and(|g| g.safe_to_bootstrap == Some(1))
    });
    let best = nodes
        .iter()
        .filter(|n| seqno(n).is_some())
        .max_by_key(|n| seqno(n));
    let (what, fix) = match (safe, best) {
        (Some(s), _) => (
            format!("the cluster is stopped: no member runs MariaDB ({} is safe to bootstrap)", s.host),
            format!("`galera_new_cluster` on {}, then `systemctl start mariadb` on the others; or `kbz install --module 7`, which does that", s.host),
        ),
        (None, Some(b)) => (
            format!("the cluster is stopped and no member is safe to bootstrap ({} has the highest seqno, {})", b.host, seqno(b).unwrap_or(-1)),
            format!("on {}: `sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' /var/lib/mysql/grastate.dat && galera_new_cluster`, then `systemctl start mariadb` on the others; or `kbz install --module 7`, which chooses the same member", b.host),
        ),
        (None, None) => (
            "the cluster is stopped and no member says its last committed seqno".into(),
            "on each member: `galera_recovery` (prints --wsrep_start_position=UUID:SEQNO); bootstrap the highest with galera_new_cluster after setting safe_to_bootstrap: 1; or `kbz install --module 7`, which does that".into(),
        ),
    };
    Some(Warning {
        severity: Severity::Critical,
        what,
        why: "a member only joins a Primary component: started alone, each waits for peers that wait for it. Bootstrapping any other than the member with the highest seqno discards the commits only it has".into(),
        fix,
    })
}

/// The settings that decide what a crash loses and what a read sees, as each member runs.
fn settings(nodes: &[Node]) -> Vec<Warning> {
    let on = |name: &str, bad: &dyn Fn(&str) -> bool| -> Vec<(String, String)> {
        nodes
            .iter()
            .filter_map(|n| {
                let v = n.variables.get(name)?;
                bad(v).then(|| (n.host.clone(), v.clone()))
            })
            .collect()
    };
    let list = |v: &[(String, String)]| {
        v.iter()
            .map(|(h, x)| format!("{h} ({x})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    let flush = on("innodb_flush_log_at_trx_commit", &|v| v != "1");
    if !flush.is_empty() {
        out.push(Warning {
            severity: Severity::Warning,
            what: format!("innodb_flush_log_at_trx_commit is not 1 on {}", list(&flush)),
            why: "a commit is acknowledged before it is on that member's disk: a host crash loses up to a second of them there, and a crash of every member together (a power cut) loses them for good. Jepsen's analyses of Galera found acknowledged transactions lost even without it".into(),
            fix: "SET GLOBAL innodb_flush_log_at_trx_commit = 1, and in the config (module 7's setting)".into(),
        });
    }
    let stale = on("wsrep_sync_wait", &|v| v == "0");
    if !stale.is_empty() {
        out.push(Warning {
            severity: Severity::Warning,
            what: format!("wsrep_sync_wait is 0 on {}: reads may be stale", list(&stale)),
            why: "Galera applies a commit on the other members after acknowledging it: a read there a moment later may not see it".into(),
            fix: "SET GLOBAL wsrep_sync_wait = 1, and in the config (module 7's setting), or per session where a read must see the latest commit".into(),
        });
    }
    out
}
