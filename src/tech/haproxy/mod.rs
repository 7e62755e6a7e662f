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
    /// Its last check: `L7OK` and the HTTP code for an HTTP check; `L7OK` and code 0 for a
    /// protocol check (mysql-check, as HAProxy 2.6 says it); `L4OK` for a TCP connect.
    pub check: String,
    pub code: String,
}

impl Server {
    /// Its last check was an HTTP one (it has a status code).
    pub fn http(&self) -> bool {
        self.code
            .parse::<u16>()
            .is_ok_and(|c| (100..600).contains(&c))
    }

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
    let (chk, code) = (col("check_status").ok(), col("check_code").ok());
    let field = |f: &[&str], i: Option<usize>| i.and_then(|i| f.get(i)).unwrap_or(&"").to_string();
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
            check: field(&f, chk),
            code: field(&f, code),
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

/// A backend in front of Galera whose servers pass a check that cannot see a non-Primary
/// member: mysql-check (a handshake, which such a member completes) or a TCP connect.
fn weak_galera_check(backend: &str, servers: &[Server]) -> Option<Warning> {
    if crate::tech::behind(backend).map(|t| t.id) != Some(Technology::Galera) {
        return None;
    }
    let weak: Vec<&str> = servers
        .iter()
        .filter(|s| s.check.starts_with("L4") || (s.check.starts_with("L7") && !s.http()))
        .map(|s| s.name.as_str())
        .collect();
    (!weak.is_empty()).then(|| Warning {
        severity: Severity::Warning,
        what: format!("backend {backend} checks {} with mysql-check or a TCP connect only", weak.join(", ")),
        why: "a non-Primary member completes the handshake and passes, then refuses every query (ERROR 1047): clients are sent to it".into(),
        fix: "check each member's Synced-and-Primary state over HTTP instead (module 7's :9200 endpoint: `option httpchk` + `check port 9200`)".into(),
    })
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
        }
        if let Some(w) = weak_galera_check(name, servers) {
            warnings.push(w);
        }
        if up.len() > 1
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
        peers: false,
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

    #[test]
    fn a_galera_writer_and_its_backups_route_to_the_writer_alone() {
        // Captured from module 8's galera_writer (one active member, two backups).
        let b = parse(&fixture("haproxy/show-stat-galera-httpchk.csv")).unwrap();
        let servers = &b["galera_writer"];
        assert_eq!(servers.iter().filter(|s| s.up()).count(), 3);
        let to: Vec<&str> = routed(servers).iter().map(|s| s.name.as_str()).collect();
        assert_eq!(to, ["maria-01"]);
        assert!(servers.iter().all(Server::http), "{servers:?}");
        assert!(weak_galera_check("galera_writer", servers).is_none());
        // The same backend on `option mysql-check` (set by hand on a lab load balancer).
        let b = parse(&fixture("haproxy/show-stat-galera-mysql-check.csv")).unwrap();
        let w = weak_galera_check("galera_writer", &b["galera_writer"]).unwrap();
        assert_eq!(
            w.what,
            "backend galera_writer checks maria-01, maria-02, maria-03 with mysql-check or a TCP connect only"
        );
        // The other backends' checks are theirs: Redis's tcp-check is not Galera's business.
        assert!(weak_galera_check("redis_master", &b["redis_master"]).is_none());
    }
}
