//! Standalone PostgreSQL (servers outside any Patroni cluster): each server asked whether it
//! is in recovery, how many standbys stream from it, how far its replay is behind what it
//! received, its WAL receiver's status and its timeline (natively by `reader`; by the CLI
//! path through psql as the postgres user on its own socket). The primary leads; two
//! primaries are a split brain.

pub mod client;
pub mod reader;
pub mod workload;

use super::Watching;
use crate::inventory::Technology;
use crate::probe::{ClusterStatus, Member, Severity, Warning};
use crate::watch::{Readings, section};

pub const EPOCH: &str = "timeline";

pub const WATCHING: Watching = Watching {
    reader: |_, _, _| Box::new(reader::Member::default()),
    script: |_, _, _, _| command(),
    status: |r| Ok(from_readings(r)),
    feed: None,
};

/// One row, `|`-separated: in recovery (t/f), standbys streaming from it, replay lag in
/// bytes, WAL receiver status (empty on a primary), version, timeline.
pub const QUERY: &str = "select pg_is_in_recovery(), (select count(*) from pg_stat_replication), \
     coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint, \
     (select status from pg_stat_wal_receiver), current_setting('server_version'), \
     (select timeline_id from pg_control_checkpoint())";

/// The command run on each server (no inventory field in it).
pub fn command() -> String {
    format!("cd / && runuser -u postgres -- psql -XAtF '|' -c \"{QUERY}\"")
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub standby: bool,
    pub standbys_streaming: u32,
    pub replay_lag: u64,
    pub receiver: String,
    pub timeline: Option<u64>,
}

pub fn parse(text: &str) -> Result<Node, String> {
    let line = text
        .lines()
        .find(|l| l.contains('|'))
        .ok_or_else(|| text.trim().to_string())?;
    let f: Vec<&str> = line.split('|').collect();
    let [rec, streaming, lag, receiver, _version, timeline] = f[..] else {
        return Err(format!("psql: unexpected row {line:?}"));
    };
    Ok(Node {
        standby: rec == "t",
        standbys_streaming: streaming.parse().unwrap_or(0),
        replay_lag: lag.parse().unwrap_or(0),
        receiver: receiver.to_string(),
        timeline: timeline.trim().parse().ok(),
    })
}

/// Every server answers for itself: there is no cluster view to ask. A server whose answer
/// did not come in time is down to us.
fn from_readings(r: Readings<'_>) -> ClusterStatus {
    let nodes: Vec<(String, Result<Node, String>)> = r
        .cluster
        .hosts
        .iter()
        .map(|h| {
            let node = match r.readings.iter().find(|(on, _)| on == h) {
                None => Err(format!("{h} did not answer in time")),
                Some((_, Err(e))) => Err(e.clone()),
                Some((_, Ok(s))) => parse(section(s, 0).unwrap_or("no answer")),
            };
            (h.clone(), node)
        })
        .collect();
    status(&r.cluster.name, &nodes)
}

/// The cluster from each server's answer (or why it gave none).
pub fn status(cluster: &str, nodes: &[(String, Result<Node, String>)]) -> ClusterStatus {
    let mut members = Vec::new();
    let mut warnings = Vec::new();
    for (host, node) in nodes {
        members.push(match node {
            Ok(n) => Member {
                host: host.clone(),
                role: if n.standby { "standby" } else { "primary" }.into(),
                state: if !n.standby {
                    format!("{} standby(s) streaming", n.standbys_streaming)
                } else if n.receiver.is_empty() {
                    "not receiving".into()
                } else {
                    n.receiver.clone()
                },
                up: true,
                lag: n.standby.then_some(n.replay_lag),
                epoch: n.timeline,
            },
            Err(e) => Member {
                host: host.clone(),
                role: "?".into(),
                state: e.clone(),
                up: false,
                lag: None,
                epoch: None,
            },
        });
    }
    let primaries: Vec<&Member> = members.iter().filter(|m| m.role == "primary").collect();
    match primaries.len() {
        0 => warnings.push(Warning {
            severity: Severity::Critical,
            what: format!("{cluster} has no primary"),
            why: "every server is down or in recovery: writes fail".into(),
            fix: "start the primary, or promote a standby (pg_ctl promote / SELECT pg_promote())"
                .into(),
        }),
        1 => {}
        _ => warnings.push(Warning {
            severity: Severity::Critical,
            what: format!(
                "{cluster} has {} primaries: {}",
                primaries.len(),
                primaries.iter().map(|m| m.host.as_str()).collect::<Vec<_>>().join(", ")
            ),
            why: "split brain: clients write to either, and the histories diverge".into(),
            fix: "stop the one that should not be primary, then rebuild it as a standby (pg_rewind or pg_basebackup)".into(),
        }),
    }
    for m in members
        .iter()
        .filter(|m| m.role == "standby" && m.state == "not receiving")
    {
        warnings.push(Warning {
            severity: Severity::Warning,
            what: format!("standby {} receives no WAL", m.host),
            why: "it falls further behind the primary every second".into(),
            fix: format!("check primary_conninfo and the replication user on {}, and `journalctl -u postgresql` there", m.host),
        });
    }
    // Standalone PostgreSQL does not fail over by itself: say so once, not as an alarm.
    let leader = (primaries.len() == 1).then(|| primaries[0].host.clone());
    let epoch = primaries.first().and_then(|m| m.epoch);
    ClusterStatus {
        cluster: cluster.to_string(),
        technology: Technology::Postgres,
        members,
        leader,
        epoch_name: EPOCH,
        epoch,
        quorum: None,
        warnings,
        routes: Default::default(),
        groups: Vec::new(),
        peers: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::fixture;

    fn captured() -> Vec<(String, Result<Node, String>)> {
        vec![
            ("pg-01".into(), parse(&fixture("postgres/primary.txt"))),
            ("pg-02".into(), parse(&fixture("postgres/standby.txt"))),
        ]
    }

    #[test]
    fn a_primary_and_a_streaming_standby() {
        let s = status("postgres-temporal", &captured());
        assert_eq!(s.leader.as_deref(), Some("pg-01"));
        assert_eq!(s.members[0].role, "primary");
        assert!(
            s.members[0].state.ends_with("standby(s) streaming"),
            "{:?}",
            s.members[0]
        );
        assert_eq!(s.members[1].role, "standby");
        assert_eq!(s.members[1].state, "streaming");
        assert_eq!(s.members[1].lag, Some(0));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert!(s.summary().contains("leader pg-01"));
    }

    #[test]
    fn two_primaries_are_a_split_brain_and_a_dead_server_is_marked() {
        let mut nodes = captured();
        nodes[1].1 = parse(&fixture("postgres/primary.txt"));
        nodes.push(("pg-03".into(), Err("pg-03: connection refused".into())));
        let s = status("postgres-temporal", &nodes);
        assert_eq!(s.leader, None);
        assert_eq!(
            s.warnings[0].what,
            "postgres-temporal has 2 primaries: pg-01, pg-02"
        );
        assert_eq!(s.worst(), Some(Severity::Critical));
        assert!(!s.members[2].up);
    }

    #[test]
    fn a_standby_without_receiver_is_named() {
        let mut nodes = captured();
        nodes[1].1 = parse(&fixture("postgres/standby.txt").replace("|streaming|", "||"));
        let s = status("postgres-temporal", &nodes);
        assert_eq!(s.warnings[0].what, "standby pg-02 receives no WAL");
    }

    #[test]
    fn psql_errors_are_errors() {
        assert!(parse("psql: error: connection to server on socket failed").is_err());
    }
}
