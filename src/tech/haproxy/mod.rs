//! HAProxy: its stats socket (`show stat`, CSV) says which server of each backend is up and so
//! takes the traffic; the host's addresses say which load balancer holds the floating one.

pub mod reader;

use super::Watching;
use crate::inventory::{Cluster, Fleet, Technology};
use crate::probe::{ClusterStatus, Member, Severity, Warning};
use crate::watch::shell::Shell;
use crate::watch::{Readings, section};
use std::collections::BTreeMap;

pub const WATCHING: Watching = Watching {
    reader: |pool, _, host| {
        Box::new(reader::Member {
            shell: Shell::new(pool, pool.target(host)),
        })
    },
    script,
    status,
    feed: None,
};

/// The CLI path: the same sections as `reader`, from socat and ip on the member.
fn script(_: &Fleet, _: &Cluster, _on: &str, _quick: bool) -> String {
    [
        format!("echo 'show stat' | socat - UNIX-CONNECT:{}", reader::SOCKET),
        "ip -o -4 addr show".to_string(),
    ]
    .join(crate::watch::SEPARATOR)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    /// UP, DOWN, MAINT, "DOWN 1/2"...
    pub status: String,
    /// A backup server: it takes traffic only while no active server is up.
    pub backup: bool,
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
    let bck = col("bck").ok();
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
            backup: bck.and_then(|b| f.get(b)).is_some_and(|b| *b == "1"),
        });
    }
    Ok(out)
}

/// The servers a backend sends traffic to: its active servers that are up, else its first
/// backup that is up (HAProxy without `option allbackups`, as module 8 writes it).
pub fn routed(servers: &[Server]) -> Vec<&Server> {
    let active: Vec<&Server> = servers.iter().filter(|s| s.up() && !s.backup).collect();
    if active.is_empty() {
        servers.iter().filter(|s| s.up()).take(1).collect()
    } else {
        active
    }
}

/// Whether `addresses` (`ip -o -4 addr show`, or one address a line) has `vip`.
fn holds(addresses: &str, vip: &str) -> bool {
    addresses.contains(&format!(" {vip}/")) || addresses.lines().any(|l| l.trim() == vip)
}

/// The load balancers from their readings (each its `show stat` and its addresses), in the
/// inventory's order.
fn status(r: Readings<'_>) -> Result<ClusterStatus, String> {
    let (cluster, config, readings) = (r.cluster, r.config, &r.readings);
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
                let parsed = section(s, 0).map(parse);
                let up = matches!(parsed, Some(Ok(_)));
                if let Some(v) = &vip
                    && section(s, 1).is_some_and(|a| holds(a, v))
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
        let up: Vec<&str> = routed(servers).iter().map(|s| s.name.as_str()).collect();
        if up.is_empty() {
            warnings.push(Warning {
                severity: Severity::Critical,
                what: format!("backend {name}: every server is down"),
                why: "its endpoint refuses every client".into(),
                fix: "check the service behind it (and its health check)".into(),
            });
        } else if up.len() > 1
            && (name.contains("primary") || name.contains("master") || name.contains("writer"))
        {
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
        epoch_name: "",
        epoch: None,
        quorum: None,
        warnings,
        routes: backends
            .iter()
            .flatten()
            .map(|(b, servers)| {
                let to = routed(servers).iter().map(|s| s.name.clone()).collect();
                (b.clone(), to)
            })
            .collect(),
        groups: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::fixture;

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
