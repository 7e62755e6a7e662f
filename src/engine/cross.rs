//! Checks that need two clusters' statuses.

use crate::inventory::Technology;
use crate::probe::{ClusterStatus, Severity, Warning};

/// Warnings that need two clusters: a load balancer sending writes somewhere else than the
/// leader its health checks should have found.
pub fn cross_check(statuses: &mut [ClusterStatus]) {
    let leaders: Vec<(Technology, Option<String>)> = statuses
        .iter()
        .map(|s| (s.technology, s.leader.clone()))
        .collect();
    for s in statuses
        .iter_mut()
        .filter(|s| s.technology == Technology::Haproxy)
    {
        for (backend, servers) in &s.routes {
            let Some(tech) = crate::tech::behind(backend) else {
                continue;
            };
            let Some((_, Some(leader))) = leaders.iter().find(|(t, _)| *t == tech.id) else {
                continue;
            };
            let wrong: Vec<&String> = servers.iter().filter(|x| *x != leader).collect();
            if !wrong.is_empty() {
                s.warnings.push(Warning {
                    severity: Severity::Critical,
                    what: format!(
                        "{} sends {backend} traffic to {}, not to the leader {leader}",
                        s.cluster,
                        wrong.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    why: "writes land on a replica (refused) or on a second primary (split brain)".into(),
                    fix: format!("check {backend}'s health check in /etc/haproxy/haproxy.cfg (Patroni OPTIONS /primary, Redis role:master) and that it can reach the members"),
                });
            }
        }
    }
}
