//! The Galera cluster from its members' own words. There is no leader in multi-master
//! Galera: the grid's leader is the writer, the member module 8's HAProxy sends writes to
//! (the first member in inventory order that is Synced in the Primary component: the others
//! are its backups, in that order). The epoch is the Primary component's conf_id; its
//! quorum is its members against a majority of its view.

use super::doctor;
use super::node::{Node, main_component, nodes};
use crate::inventory::Technology;
use crate::probe::{ClusterStatus, Member, Quorum};
use crate::watch::Readings;
use std::collections::BTreeMap;

pub fn status(r: Readings<'_>) -> Result<ClusterStatus, String> {
    let nodes = nodes(&r);
    if nodes
        .iter()
        .all(|n| n.wsrep.is_none() && n.grastate.is_none())
    {
        let why: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}: {}", n.host, n.error.as_deref().unwrap_or("?")))
            .collect();
        return Err(format!("no member answers: {}", why.join("; ")));
    }
    let main = main_component(&nodes);
    let in_main = |n: &Node| {
        main.as_ref()
            .is_some_and(|(c, _)| n.component().as_ref() == Some(c))
    };
    let writer = nodes
        .iter()
        .find(|n| n.synced() && in_main(n))
        .map(|n| n.host.clone());
    let newest = nodes
        .iter()
        .filter(|n| in_main(n))
        .filter_map(Node::last_committed)
        .max();
    let members = nodes
        .iter()
        .map(|n| Member {
            host: n.host.clone(),
            role: if writer.as_deref() == Some(n.host.as_str()) {
                "writer".into()
            } else {
                "member".into()
            },
            state: match (&n.wsrep, &n.error) {
                (Some(_), _) if !n.primary() => format!(
                    "{}, {}",
                    n.state(),
                    n.get("wsrep_cluster_status").unwrap_or("?")
                ),
                (Some(_), _) if !in_main(n) => format!("{}, another component", n.state()),
                (Some(_), _) => n.state().to_string(),
                (None, _) if n.grastate.is_some() => "stopped".into(),
                (None, e) => format!("down: {}", e.as_deref().unwrap_or("no answer")),
            },
            up: in_main(n),
            lag: newest
                .zip(n.last_committed())
                .filter(|_| in_main(n))
                .map(|(a, b)| a.saturating_sub(b)),
            epoch: n.conf_id(),
        })
        .collect();
    let quorum = match &main {
        Some((_, m)) => {
            let view = m
                .iter()
                .filter_map(|n| n.size())
                .max()
                .unwrap_or(m.len() as u64) as usize;
            Quorum {
                members: view,
                up: m.len(),
                needed: view / 2 + 1,
            }
        }
        None => Quorum {
            members: nodes.len(),
            up: 0,
            needed: nodes.len() / 2 + 1,
        },
    };
    Ok(ClusterStatus {
        cluster: r.cluster.name.clone(),
        technology: Technology::Galera,
        members,
        leader: writer,
        epoch_name: super::EPOCH,
        epoch: main.as_ref().map(|((_, id), _)| *id),
        quorum: Some(quorum),
        warnings: doctor::warnings(&nodes, main.as_ref().map(|(c, _)| c)),
        routes: BTreeMap::new(),
        groups: Vec::new(),
        peers: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Cluster, FleetConfig};
    use crate::probe::{Severity, fixture};
    use crate::watch::Section;

    const HOSTS: [&str; 3] = ["maria-01", "maria-02", "maria-03"];

    /// A member that answered: its status and settings as tests/fixtures/probes/galera has
    /// them (captured from the lab by capture-galera.sh).
    fn answered(status: &str, variables: &str) -> Result<Vec<Section>, String> {
        Ok(vec![
            Ok(fixture(&format!("galera/status-{status}.txt"))),
            Ok(fixture(&format!("galera/variables-{variables}.txt"))),
            Ok(String::new()),
        ])
    }

    /// A member whose MariaDB did not answer, and what its health endpoint said.
    fn stopped(grastate: &str) -> Result<Vec<Section>, String> {
        Ok(vec![
            Err("10.203.0.170:3306: connection refused".into()),
            Ok(String::new()),
            Ok(fixture(&format!("galera/grastate-{grastate}.json"))),
        ])
    }

    fn run(readings: Vec<Result<Vec<Section>, String>>) -> ClusterStatus {
        let cluster = Cluster {
            name: "mariadb".into(),
            technology: Technology::Galera,
            pools: vec![],
            hosts: HOSTS.iter().map(|h| h.to_string()).collect(),
        };
        let config = FleetConfig::default();
        status(Readings {
            cluster: &cluster,
            config: &config,
            hosts: &[],
            readings: HOSTS.iter().map(|h| h.to_string()).zip(readings).collect(),
        })
        .unwrap()
    }

    fn whats(s: &ClusterStatus) -> Vec<(Severity, &str)> {
        s.warnings
            .iter()
            .map(|w| (w.severity, w.what.as_str()))
            .collect()
    }

    #[test]
    fn healthy_cluster_has_its_writer_view_and_no_warning() {
        let s = run(vec![
            answered("healthy-01", "module7"),
            answered("healthy-02", "module7"),
            answered("healthy-03", "module7"),
        ]);
        assert_eq!(
            s.leader.as_deref(),
            Some("maria-01"),
            "the first Synced member writes"
        );
        let q = s.quorum.unwrap();
        assert_eq!((q.members, q.up, q.needed), (3, 3, 2));
        assert!(s.epoch.is_some_and(|e| e >= 1));
        assert!(
            s.members.iter().all(|m| m.up && m.state == "Synced"),
            "{:?}",
            s.members
        );
        assert_eq!(whats(&s), []);
    }

    #[test]
    fn a_member_cut_off_is_non_primary_and_the_majority_s_view_shrinks() {
        let s = run(vec![
            answered("partitioned-01", "module7"),
            answered("healthy-02", "module7"),
            answered("partitioned-03", "module7"),
        ]);
        let m3 = &s.members[2];
        assert!(!m3.up && m3.state.contains("non-Primary"), "{m3:?}");
        assert!(
            whats(&s).contains(&(Severity::Critical, "maria-03 is non-Primary")),
            "{:?}",
            whats(&s)
        );
        assert_eq!(s.leader.as_deref(), Some("maria-01"));
    }

    #[test]
    fn the_settings_that_lose_commits_or_read_stale_are_named() {
        let s = run(vec![
            answered("healthy-01", "module7"),
            answered("healthy-02", "flush2-syncwait0"),
            answered("healthy-03", "module7"),
        ]);
        let w = whats(&s);
        assert!(
            w.contains(&(
                Severity::Warning,
                "innodb_flush_log_at_trx_commit is not 1 on maria-02 (2)"
            )),
            "{w:?}"
        );
        assert!(
            w.contains(&(
                Severity::Warning,
                "wsrep_sync_wait is 0 on maria-02 (0): reads may be stale"
            )),
            "{w:?}"
        );
    }

    #[test]
    fn a_stopped_member_is_down_and_the_view_of_two_survives_no_loss() {
        let s = run(vec![
            answered("one-stopped-01", "module7"),
            answered("one-stopped-01", "module7"),
            stopped("one-stopped-03"),
        ]);
        assert_eq!(s.members[2].state, "stopped");
        let q = s.quorum.unwrap();
        assert_eq!((q.members, q.up, q.survives()), (2, 2, 0));
        assert!(
            whats(&s)
                .iter()
                .any(|(_, w)| w.starts_with("maria-03: MariaDB does not answer"))
        );
    }

    #[test]
    fn a_full_stop_names_who_bootstraps() {
        // Killed: nobody is safe to bootstrap; module 7 recovers the positions first.
        let s = run(vec![
            stopped("killed-01"),
            stopped("killed-02"),
            stopped("killed-03"),
        ]);
        let stop = s
            .warnings
            .iter()
            .find(|w| w.what.starts_with("the cluster is stopped"))
            .unwrap();
        assert_eq!(stop.severity, Severity::Critical);
        assert!(stop.fix.contains("kbz install --module 7"), "{}", stop.fix);
        // Stopped one by one: the last one is safe to bootstrap.
        let s = run(vec![
            stopped("stopped-01"),
            stopped("stopped-02"),
            stopped("stopped-03"),
        ]);
        assert!(
            whats(&s).contains(&(
                Severity::Critical,
                "the cluster is stopped: no member runs MariaDB (maria-03 is safe to bootstrap)"
            )),
            "{:?}",
            whats(&s)
        );
    }

    /// A member as module 7's health endpoint also saw it: its `/state`.
    fn lasting(status: &str, state: &str) -> Result<Vec<Section>, String> {
        let mut s = answered(status, "module7")?;
        s.push(Ok(fixture(&format!("galera/state-{state}.json"))));
        Ok(s)
    }

    #[test]
    fn a_member_desynced_for_long_is_named_with_how_long_and_a_fresh_one_is_not() {
        // maria-02 desynced by hand (capture-galera.sh: the three members' status then),
        // its /state 65 s later.
        let s = run(vec![
            answered("desynced-01", "module7"),
            lasting("desynced-02", "desynced-02"),
            answered("desynced-03", "module7"),
        ]);
        let w: Vec<_> = whats(&s)
            .into_iter()
            .filter(|(_, w)| w.contains("Donor"))
            .collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].1
                .starts_with("maria-02 has been Donor/Desynced for 1 min"),
            "{w:?}"
        );
        assert_eq!(s.members[1].state, "Donor/Desynced");

        // Just desynced: a transfer would look the same; no warning yet.
        let s = run(vec![
            answered("desynced-01", "module7"),
            lasting("desynced-02", "desynced-fresh-02"),
            answered("desynced-03", "module7"),
        ]);
        assert!(
            !whats(&s).iter().any(|(_, w)| w.contains("Donor")),
            "{:?}",
            whats(&s)
        );

        // The same member with a /state that names another state (a Synced one's): the
        // duration is not its own, so doctor says it cannot tell.
        let s = run(vec![
            answered("desynced-01", "module7"),
            lasting("desynced-02", "synced-01"),
            answered("desynced-03", "module7"),
        ]);
        assert!(
            whats(&s)
                .iter()
                .any(|(_, w)| w.starts_with("maria-02 is Donor/Desynced (for how long")),
            "{:?}",
            whats(&s)
        );
    }

    #[test]
    fn a_donor_is_named() {
        let s = run(vec![
            answered("healthy-01", "module7"),
            answered("donor", "module7"),
            answered("healthy-03", "module7"),
        ]);
        assert!(
            whats(&s)
                .iter()
                .any(|(_, w)| w.starts_with("maria-02 is Donor")),
            "{:?}",
            whats(&s)
        );
    }
}
