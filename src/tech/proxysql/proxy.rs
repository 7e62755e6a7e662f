//! One ProxySQL as its admin tables say: its servers by hostgroup, its Galera hostgroups,
//! what its monitor last saw, its connection pool; which servers it sends to.

use super::tables::{self, Check, GaleraHostgroups, PoolEntry, Server};
use crate::watch::{failure, section};

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
    pub fn from_sections(host: &str, s: &[crate::watch::Section]) -> Proxy {
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
        w.sort_unstable();
        w.dedup();
        w
    }

    /// The servers it writes to: the ONLINE ones of its writer hostgroups.
    pub fn writers(&self) -> Vec<&Server> {
        self.writer_hostgroups()
            .into_iter()
            .flat_map(|hg| self.online(hg))
            .collect()
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
    pub fn purpose(&self, hg: u64) -> &'static str {
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
