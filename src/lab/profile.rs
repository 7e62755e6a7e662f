//! Which hosts a lab has: the seed's layout with the team's host names, and where each sits on
//! the lab's /24 (the seed's own last octets, so addresses read like the real fleet's).

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The hosts whose services the lab runs for real: PostgreSQL/Patroni, Redis, RabbitMQ,
    /// Galera, HAProxy, and install-01.
    Core,
    /// Core plus the hosts of technologies without a Debian package here (ProxySQL, MinIO,
    /// K3s): they boot as bare hosts.
    Full,
}

/// One lab host: an inventory row and its last address octet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    pub name: String,
    pub octet: u8,
    pub pool: String,
    pub role: String,
    pub subrole: String,
    pub docker_stack: String,
    pub notes: String,
}

/// (name, octet, pool, role, subrole, docker stack, notes)
type Row = (
    &'static str,
    u8,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

#[rustfmt::skip]
const CORE: &[Row] = &[
    ("db-master-01", 120, "db-pool",      "db",           "postgres",         "patroni-node",          "PostgreSQL + Patroni (initial primary)"),
    ("db-slave-01",  121, "db-pool",      "db",           "postgres",         "patroni-node",          "PostgreSQL + Patroni (replica)"),
    ("db-slave-02",  122, "db-pool",      "db",           "postgres",         "patroni-node",          "PostgreSQL + Patroni (replica)"),
    ("redis-01",     123, "redis-pool",   "redis",        "master",           "redis-ha",              "Redis master + Sentinel"),
    ("redis-02",     124, "redis-pool",   "redis",        "replica",          "redis-ha",              "Redis replica + Sentinel"),
    ("redis-03",     125, "redis-pool",   "redis",        "replica",          "redis-ha",              "Redis replica + Sentinel"),
    ("queue-01",     126, "queue-pool",   "queue",        "rabbitmq",         "rabbitmq-ha",           "RabbitMQ quorum node 1"),
    ("queue-02",     127, "queue-pool",   "queue",        "rabbitmq",         "rabbitmq-ha",           "RabbitMQ quorum node 2"),
    ("queue-03",     128, "queue-pool",   "queue",        "rabbitmq",         "rabbitmq-ha",           "RabbitMQ quorum node 3"),
    ("maria-01",     170, "db-pool",      "db",           "mariadb",          "mariadb-galera",        "MariaDB Galera node 1"),
    ("maria-02",     171, "db-pool",      "db",           "mariadb",          "mariadb-galera",        "MariaDB Galera node 2"),
    ("maria-03",     172, "db-pool",      "db",           "mariadb",          "mariadb-galera",        "MariaDB Galera node 3"),
    ("haproxy-01",    11, "haproxy-pool", "lb",           "internal-haproxy", "haproxy",               "HAProxy 1"),
    ("haproxy-02",    12, "haproxy-pool", "lb",           "internal-haproxy", "haproxy",               "HAProxy 2"),
    ("install-01",   250, "management",   "orchestrator", "base",             "no-docker-or-light",    "install/orchestration host"),
];

#[rustfmt::skip]
const FULL_EXTRA: &[Row] = &[
    ("proxysql-01",   173, "haproxy-pool", "db_proxy", "proxysql", "proxysql",           "ProxySQL 1 (bare host: no package)"),
    ("proxysql-02",   174, "haproxy-pool", "db_proxy", "proxysql", "proxysql",           "ProxySQL 2 (bare host: no package)"),
    ("minio-01",      134, "storage",      "storage",  "minio",    "minio",              "MinIO node 1 (bare host: no package)"),
    ("minio-02",      135, "storage",      "storage",  "minio",    "minio",              "MinIO node 2 (bare host: no package)"),
    ("minio-03",      136, "storage",      "storage",  "minio",    "minio",              "MinIO node 3 (bare host: no package)"),
    ("k8s-master-01", 100, "k3s-masters",  "k3s",      "master",   "k3s-control-plane",  "K3s server 1 (bare host: no package)"),
    ("k8s-master-02", 101, "k3s-masters",  "k3s",      "master",   "k3s-control-plane",  "K3s server 2 (bare host: no package)"),
    ("k8s-master-03", 102, "k3s-masters",  "k3s",      "master",   "k3s-control-plane",  "K3s server 3 (bare host: no package)"),
    ("k8s-worker-01", 110, "k3s-workers",  "k3s",      "worker",   "k3s-worker-general", "K3s agent 1 (bare host: no package)"),
    ("k8s-worker-02", 111, "k3s-workers",  "k3s",      "worker",   "k3s-worker-general", "K3s agent 2 (bare host: no package)"),
    ("k8s-worker-03", 112, "k3s-workers",  "k3s",      "worker",   "k3s-worker-general", "K3s agent 3 (bare host: no package)"),
    ("k8s-worker-04", 113, "k3s-workers",  "k3s",      "worker",   "k3s-worker-general", "K3s agent 4 (bare host: no package)"),
    ("k8s-worker-05", 114, "k3s-workers",  "k3s",      "worker",   "k3s-worker-general", "K3s agent 5 (bare host: no package)"),
];

/// Octets never given to a host: the bridge (.1), the floating addresses the load-balancer
/// modules use (.10 HAProxy, .20 ProxySQL), and broadcast.
pub const RESERVED_OCTETS: [u8; 4] = [1, 10, 20, 255];

/// Most generic app hosts a lab can have beside the full profile on one /24.
pub fn max_app_hosts() -> usize {
    let named = CORE.len() + FULL_EXTRA.len();
    253 - RESERVED_OCTETS.len() + 2 - named
}

/// The hosts of a profile plus `apps` generic hosts (`app-001`...) on the free octets.
pub fn hosts(profile: Profile, apps: usize) -> Result<Vec<HostSpec>, String> {
    let mut rows: Vec<Row> = CORE.to_vec();
    if profile == Profile::Full {
        rows.extend_from_slice(FULL_EXTRA);
    }
    let mut specs: Vec<HostSpec> = rows
        .iter()
        .map(
            |(name, octet, pool, role, subrole, stack, notes)| HostSpec {
                name: (*name).into(),
                octet: *octet,
                pool: (*pool).into(),
                role: (*role).into(),
                subrole: (*subrole).into(),
                docker_stack: (*stack).into(),
                notes: (*notes).into(),
            },
        )
        .collect();
    // App hosts never take a named host's octet, whatever the profile, so that a lab grown
    // from core to full keeps every address.
    let used: Vec<u8> = CORE.iter().chain(FULL_EXTRA).map(|r| r.1).collect();
    let mut free = (2..=254u8).filter(|o| !used.contains(o) && !RESERVED_OCTETS.contains(o));
    for i in 1..=apps {
        let octet = free.next().ok_or_else(|| {
            format!(
                "a lab holds at most {} app hosts beside its named hosts on one /24",
                max_app_hosts()
            )
        })?;
        specs.push(HostSpec {
            name: format!("app-{i:03}"),
            octet,
            pool: "app-pool".into(),
            role: "app".into(),
            subrole: "generic".into(),
            docker_stack: "none".into(),
            notes: "generic app host".into(),
        });
    }
    Ok(specs)
}

/// The lab's inventory, in the team's real 12-column format (ENV lab).
pub fn servers_tsv(hosts: &[HostSpec], net: Ipv4Addr) -> String {
    let mut s = String::from(
        "ENV\tIP_PUBLIQUE\tHOSTNAME\tIP_PRIVEE\tFQDN\tUSER_SSH\tPOOL\tROLE\tSUBROLE\tDOCKER_STACK\tCORE\tNOTES\n",
    );
    for h in hosts {
        let o = net.octets();
        let ip = Ipv4Addr::new(o[0], o[1], o[2], h.octet);
        s.push_str(&format!(
            "lab\t\t{}\t{ip}\t{}.lab.internal\troot\t{}\t{}\t{}\t{}\tyes\t{}\n",
            h.name, h.name, h.pool, h.role, h.subrole, h.docker_stack, h.notes
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Fleet, RuleSet, parse};
    use std::path::Path;

    #[test]
    fn profiles_and_app_hosts_fit_on_one_24() {
        assert_eq!(hosts(Profile::Core, 0).unwrap().len(), 15);
        assert_eq!(hosts(Profile::Full, 0).unwrap().len(), 28);
        let many = hosts(Profile::Full, 100).unwrap();
        assert_eq!(many.len(), 128);
        let mut octets: Vec<u8> = many.iter().map(|h| h.octet).collect();
        octets.sort();
        octets.dedup();
        assert_eq!(octets.len(), 128, "octets are unique");
        assert!(many.iter().all(|h| !RESERVED_OCTETS.contains(&h.octet)));
        assert!(hosts(Profile::Full, max_app_hosts()).is_ok());
        assert!(hosts(Profile::Full, max_app_hosts() + 1).is_err());
    }

    #[test]
    fn lab_inventory_is_valid_and_groups_like_the_fleet() {
        let specs = hosts(Profile::Full, 2).unwrap();
        let tsv = servers_tsv(&specs, Ipv4Addr::new(10, 203, 0, 0));
        let inv = parse(Path::new("lab.tsv"), tsv.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let fleet = Fleet::new(&inv, None, &RuleSet::builtin()).unwrap();
        assert_eq!(fleet.env, "lab");
        let names: Vec<_> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "postgres", "redis", "rabbitmq", "mariadb", "haproxy", "proxysql", "minio", "k3s"
            ]
        );
        let db = fleet.host("db-master-01").unwrap();
        assert_eq!(db.ip_private.to_string(), "10.203.0.120");
    }
}
