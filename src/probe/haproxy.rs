//! HAProxy's stats socket (`show stat`, CSV): which server of each backend is up and so takes
//! the traffic.

use super::{ClusterStatus, Member, Severity, Warning};
use crate::inventory::{Cluster, FleetConfig, Technology};
use crate::watch::Reading;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    /// UP, DOWN, MAINT, "DOWN 1/2"...
    pub status: String,
}

impl Server {
    pub fn up(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ")
    }
}

/// Backend name -> its servers (the FRONTEND and BACKEND summary rows left out).
pub fn parse(csv: &str) -> Result<BTreeMap<String, Vec<Server>>, String> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or("show stat: no header line")?;
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("show stat: no {name} column"))
    };
    let (px, sv, st) = (col("pxname")?, col("svname")?, col("status")?);
    let mut out: BTreeMap<String, Vec<Server>> = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(p), Some(s), Some(status)) = (f.get(px), f.get(sv), f.get(st)) else {
            continue;
        };
        if *s == "FRONTEND" || *s == "BACKEND" {
            continue;
        }
        out.entry(p.to_string()).or_default().push(Server {
            name: s.to_string(),
            status: status.to_string(),
        });
    }
    Ok(out)
}

/// Whether `addresses` (`ip -o -4 addr show`, or one address a line) has `vip`.
fn holds(addresses: &str, vip: &str) -> bool {
    addresses.contains(&format!(" {vip}/")) || addresses.lines().any(|l| l.trim() == vip)
}

/// The load balancers from their readings (each its `show stat` and its addresses), in the
/// inventory's order.
pub fn status(
    cluster: &Cluster,
    config: &FleetConfig,
    readings: &[Reading],
) -> Result<ClusterStatus, String> {
    let vip = config
        .vars
        .get("haproxy_vip")
        .map(|v| v.split('/').next().unwrap_or(v).to_string());
    let mut members = Vec::new();
    let mut holders = Vec::new();
    let mut backends: Option<BTreeMap<String, Vec<Server>>> = None;
    let mut warnings = Vec::new();
    for h in &cluster.hosts {
        let Some((_, reading)) = readings.iter().find(|(on, _)| on == h) else {
            continue;
        };
        match reading {
            Ok(s) => {
                let parsed = s.first().map(|t| parse(t));
                let up = matches!(parsed, Some(Ok(_)));
                if let Some(v) = &vip
                    && s.get(1).is_some_and(|a| holds(a, v))
                {
                    holders.push(h.clone());
                }
                if let Some(Ok(b)) = parsed
                    && backends.is_none()
                {
                    backends = Some(b);
                }
                members.push(Member {
                    host: h.clone(),
                    role: if holders.contains(h) {
                        "holds the address".into()
                    } else {
                        "backup".into()
                    },
                    state: if up {
                        "running".into()
                    } else {
                        "haproxy not answering".into()
                    },
                    up,
                    lag: None,
                    epoch: None,
                });
            }
            Err(e) => members.push(Member {
                host: h.clone(),
                role: "?".into(),
                state: e.clone(),
                up: false,
                lag: None,
                epoch: None,
            }),
        }
    }
    if let Some(v) = &vip {
        match holders.len() {
            1 => {}
            0 => warnings.push(Warning {
                severity: Severity::Critical,
                what: format!("no load balancer holds the floating address {v}"),
                why: "clients of the endpoints reach nothing".into(),
                fix: "systemctl status keepalived on the load balancers; check both see each other (VRRP)".into(),
            }),
            _ => warnings.push(Warning {
                severity: Severity::Critical,
                what: format!("{} hold the floating address {v} at once", holders.join(" and ")),
                why: "split brain: clients reach either, at random".into(),
                fix: "check VRRP between them (unicast peers, firewall); restart keepalived on the one that should be backup".into(),
            }),
        }
    }
    for (name, servers) in backends.iter().flatten() {
        let up: Vec<&str> = servers
            .iter()
            .filter(|s| s.up())
            .map(|s| s.name.as_str())
            .collect();
        if up.is_empty() {
            warnings.push(Warning {
                severity: Severity::Critical,
                what: format!("backend {name}: every server is down"),
                why: "its endpoint refuses every client".into(),
                fix: "check the service behind it (and its health check)".into(),
            });
        } else if up.len() > 1 && (name.contains("primary") || name.contains("master")) {
            warnings.push(Warning {
                severity: Severity::Critical,
                what: format!(
                    "backend {name} routes writes to {} servers: {}",
                    up.len(),
                    up.join(", ")
                ),
                why: "writes may land on a replica, or on two primaries".into(),
                fix: "check the health check (Patroni /primary, Redis role:master)".into(),
            });
        }
    }
    Ok(ClusterStatus {
        cluster: cluster.name.clone(),
        technology: Technology::Haproxy,
        leader: holders.first().cloned(),
        members,
        epoch_name: crate::tech::of(Technology::Haproxy).epoch,
        epoch: None,
        quorum: None,
        warnings,
        routes: backends
            .iter()
            .flatten()
            .map(|(b, servers)| {
                let up = servers.iter().filter(|s| s.up()).map(|s| s.name.clone());
                (b.clone(), up.collect())
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn healthy_backends_route_to_the_leader_and_the_master() {
        let b = parse(&fixture("haproxy/show-stat-healthy.csv")).unwrap();
        let up = |name: &str| -> Vec<String> {
            b[name]
                .iter()
                .filter(|s| s.up())
                .map(|s| s.name.clone())
                .collect()
        };
        assert_eq!(up("postgres_primary"), ["db-master-01"]);
        assert_eq!(up("redis_master"), ["redis-01"]);
        assert_eq!(b["postgres_primary"].len(), 3);
        assert!(!b.contains_key("stats"), "no server rows in stats");
    }
}
