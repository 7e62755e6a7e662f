//! Checks that need two clusters' statuses.

use crate::inventory::Technology;
use crate::probe::{ClusterStatus, Severity, Warning};
use crate::tech::Balanced;

/// Warnings that need two clusters: a load balancer sending clients somewhere else than its
/// health checks should have found (the leader, or the members that serve).
pub fn cross_check(statuses: &mut [ClusterStatus]) {
    let clusters: Vec<(Technology, Option<String>, Vec<String>)> = statuses
        .iter()
        .map(|s| {
            let serving = s.members.iter().filter(|m| m.up).map(|m| m.host.clone());
            (s.technology, s.leader.clone(), serving.collect())
        })
        .collect();
    for s in statuses
        .iter_mut()
        .filter(|s| s.technology == Technology::Haproxy)
    {
        for (backend, servers) in &s.routes {
            let Some(tech) = crate::tech::behind(backend) else {
                continue;
            };
            let Some((_, leader, serving)) = clusters.iter().find(|(t, _, _)| *t == tech.id) else {
                continue;
            };
            let warning = match (tech.balanced, leader) {
                (Balanced::ToLeader, Some(leader)) => {
                    to_leader(&s.cluster, backend, servers, leader)
                }
                (Balanced::ToLeader, None) => None,
                (Balanced::ToServing, _) => to_serving(&s.cluster, backend, servers, serving),
            };
            s.warnings.extend(warning);
        }
    }
}

fn to_leader(lb: &str, backend: &str, servers: &[String], leader: &str) -> Option<Warning> {
    let wrong: Vec<&str> = servers
        .iter()
        .filter(|x| *x != leader)
        .map(String::as_str)
        .collect();
    (!wrong.is_empty()).then(|| Warning {
        severity: Severity::Critical,
        what: format!(
            "{lb} sends {backend} traffic to {}, not to the leader {leader}",
            wrong.join(", ")
        ),
        why: "writes land on a replica (refused) or on a second primary (split brain)".into(),
        fix: format!("check {backend}'s health check in /etc/haproxy/haproxy.cfg (Patroni OPTIONS /primary, Redis role:master) and that it can reach the members"),
    })
}

fn to_serving(lb: &str, backend: &str, servers: &[String], serving: &[String]) -> Option<Warning> {
    let wrong: Vec<&str> = servers
        .iter()
        .filter(|x| !serving.contains(x))
        .map(String::as_str)
        .collect();
    (!wrong.is_empty()).then(|| Warning {
        severity: Severity::Critical,
        what: format!(
            "{lb} sends {backend} traffic to {}, which does not serve",
            wrong.join(", ")
        ),
        why: "its clients are refused or hang until the load balancer's check notices".into(),
        fix: format!("check {backend}'s health check in /etc/haproxy/haproxy.cfg (RabbitMQ: the management API's port-listener check) and that it can reach the members"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Member;

    fn status(t: Technology, leader: Option<&str>, up: &[(&str, bool)]) -> ClusterStatus {
        ClusterStatus {
            cluster: t.id().into(),
            technology: t,
            members: up
                .iter()
                .map(|(h, up)| Member {
                    host: h.to_string(),
                    role: String::new(),
                    state: String::new(),
                    up: *up,
                    lag: None,
                    epoch: None,
                })
                .collect(),
            leader: leader.map(String::from),
            epoch_name: "",
            epoch: None,
            quorum: None,
            warnings: vec![],
            routes: Default::default(),
            groups: Vec::new(),
            peers: false,
        }
    }

    #[test]
    fn writes_go_to_the_leader_amqp_to_every_node_that_serves() {
        let mut lb = status(Technology::Haproxy, None, &[]);
        let to = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        lb.routes.insert("redis_master".into(), to(&["redis-01"]));
        lb.routes
            .insert("rabbitmq_amqp".into(), to(&["queue-01", "queue-02"]));
        let redis = status(Technology::Redis, Some("redis-01"), &[("redis-01", true)]);
        let rabbit = |q2_up| {
            status(
                Technology::Rabbitmq,
                Some("queue-01"),
                &[("queue-01", true), ("queue-02", q2_up), ("queue-03", false)],
            )
        };
        let mut all = [lb.clone(), redis.clone(), rabbit(true)];
        cross_check(&mut all);
        assert!(all[0].warnings.is_empty(), "{:?}", all[0].warnings);

        let mut all = [lb.clone(), redis, rabbit(false)];
        cross_check(&mut all);
        let w: Vec<&str> = all[0].warnings.iter().map(|w| w.what.as_str()).collect();
        assert_eq!(
            w,
            ["haproxy sends rabbitmq_amqp traffic to queue-02, which does not serve"]
        );

        let moved = status(Technology::Redis, Some("redis-02"), &[("redis-02", true)]);
        let mut all = [lb, moved, rabbit(true)];
        cross_check(&mut all);
        assert_eq!(
            all[0].warnings[0].what,
            "haproxy sends redis_master traffic to redis-01, not to the leader redis-02"
        );
    }
}
