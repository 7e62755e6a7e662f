//! The ProxySQL proxies from their admin tables. Proxies are peers (no leader, no quorum):
//! each member's state is the Galera member it writes to; the routes are each hostgroup's
//! ONLINE servers, as the first proxy that answered has them.

use super::doctor;
use super::tables::{self, Check, GaleraHostgroups, PoolEntry, Server};
use crate::inventory::Technology;
use crate::probe::{ClusterStatus, Member};
use crate::watch::{Readings, failure, section};
use std::collections::BTreeMap;

/// One proxy as its admin tables say.
#[derive(Debug, Clone, Default)]
pub struct Proxy {
    pub host: String,
    pub servers: Vec<Server>,
    pub galera: Vec<GaleraHostgroups>,
    /// The monitor's newest Galera check of each server, and its newest connect and ping.
    pub checks: Vec<Check>,
    pub connects: Vec<Check>,
    pub pings: Vec<Check>,
    pub pool: Vec<PoolEntry>,
    /// Why its admin did not answer.
    pub error: Option<String>,
}

impl Proxy {
    /// Section `i`'s rows; a section that failed or holds a server error gives none.
    fn from_sections(host: &str, s: &[crate::watch::Section]) -> Proxy {
        let mut p = Proxy {
            host: host.to_string(),
            ..Proxy::default()
        };
        let table = |i: usize| tables::rows(section(s, i).unwrap_or(""));
        match table(0) {
            Err(e) => p.error = Some(e),
            Ok(_) if section(s, 0).is_none() => p.error = Some(failure(s, 0).to_string()),
            Ok(rows) => p.servers = tables::servers(&rows),
        }
        p.galera = table(1)
            .map(|r| tables::galera_hostgroups(&r))
            .unwrap_or_default();
        p.checks = table(2)
            .map(|r| tables::latest_checks(&r))
            .unwrap_or_default();
        p.connects = table(3)
            .map(|r| tables::latest_checks(&r))
            .unwrap_or_default();
        p.pings = table(4)
            .map(|r| tables::latest_checks(&r))
            .unwrap_or_default();
        p.pool = table(5).map(|r| tables::pool(&r)).unwrap_or_default();
        p
    }

    pub fn answered(&self) -> bool {
        self.error.is_none()
    }

    /// Its writer hostgroups: the Galera ones, else hostgroup names' convention is unknown
    /// and every hostgroup counts.
    pub fn writer_hostgroups(&self) -> Vec<u64> {
        let mut w: Vec<u64> = self
            .galera
            .iter()
            .filter(|g| g.active)
            .map(|g| g.writer)
            .collect();
        w.dedup();
        w
    }

    /// A server's live status: the connection pool's where it has the server (it changes
    /// as the monitor acts), else runtime_mysql_servers'.
    pub fn live(&self, s: &Server) -> String {
        self.pool
            .iter()
            .find(|p| p.hostgroup == s.hostgroup && p.host == s.hostname && p.port == s.port)
            .map_or_else(|| s.status.clone(), |p| p.status.clone())
    }

    /// The ONLINE servers of hostgroup `hg`.
    pub fn online(&self, hg: u64) -> Vec<&Server> {
        self.servers
            .iter()
            .filter(|s| s.hostgroup == hg && self.live(s) == "ONLINE")
            .collect()
    }

    /// What hostgroup `hg` is for, in the Galera hostgroups' words.
    fn purpose(&self, hg: u64) -> &'static str {
        for g in &self.galera {
            match hg {
                x if x == g.writer => return "writer",
                x if x == g.backup_writer => return "backup writer",
                x if x == g.reader => return "reader",
                x if x == g.offline => return "offline",
                _ => {}
            }
        }
        "hostgroup"
    }
}

/// The inventory name of the host a table calls `hostname` (an address or a DNS name).
pub fn name_of(hosts: &[(String, String)], hostname: &str) -> String {
    hosts
        .iter()
        .find(|(n, ip)| {
            ip == hostname
                || n == hostname
                || hostname
                    .strip_prefix(n.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        })
        .map_or_else(|| hostname.to_string(), |(n, _)| n.clone())
}

pub fn status(r: Readings<'_>) -> Result<ClusterStatus, String> {
    let proxies: Vec<Proxy> = r
        .cluster
        .hosts
        .iter()
        .map(|h| match r.readings.iter().find(|(on, _)| on == h) {
            None => Proxy {
                host: h.clone(),
                error: Some("no answer".into()),
                ..Proxy::default()
            },
            Some((_, Err(e))) => Proxy {
                host: h.clone(),
                error: Some(e.clone()),
                ..Proxy::default()
            },
            Some((_, Ok(s))) => Proxy::from_sections(h, s),
        })
        .collect();
    if !proxies.iter().any(Proxy::answered) {
        let why: Vec<String> = proxies
            .iter()
            .map(|p| format!("{}: {}", p.host, p.error.as_deref().unwrap_or("?")))
            .collect();
        return Err(format!("no ProxySQL admin answers: {}", why.join("; ")));
    }
    let name = |h: &str| name_of(r.hosts, h);
    let members = proxies
        .iter()
        .map(|p| Member {
            host: p.host.clone(),
            role: "proxy".into(),
            state: match &p.error {
                Some(e) => format!("down: {e}"),
                None => {
                    let writers: Vec<String> = p
                        .writer_hostgroups()
                        .iter()
                        .flat_map(|hg| p.online(*hg))
                        .map(|s| name(&s.hostname))
                        .collect();
                    match writers.as_slice() {
                        [] if p.galera.is_empty() => "running".into(),
                        [] => "NO WRITER".into(),
                        w => format!("writes to {}", w.join(", ")),
                    }
                }
            },
            up: p.answered(),
            lag: None,
            epoch: None,
        })
        .collect();
    let mut routes = BTreeMap::new();
    if let Some(p) = proxies.iter().find(|p| p.answered()) {
        let mut hostgroups: Vec<u64> = p.servers.iter().map(|s| s.hostgroup).collect();
        hostgroups.sort_unstable();
        hostgroups.dedup();
        for hg in hostgroups {
            routes.insert(
                format!("{} {hg}", p.purpose(hg)),
                p.online(hg).iter().map(|s| name(&s.hostname)).collect(),
            );
        }
    }
    Ok(ClusterStatus {
        cluster: r.cluster.name.clone(),
        technology: Technology::Proxysql,
        members,
        leader: None,
        epoch_name: "",
        epoch: None,
        quorum: None,
        warnings: doctor::warnings(&proxies, &name),
        routes,
        groups: Vec::new(),
        peers: true,
    })
}
