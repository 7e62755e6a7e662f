//! ProxySQL's parsers and rules on public captures of real ProxySQL output (each fixture's
//! header names its source). Where no public capture shows a degraded state, a real capture
//! is parsed and then changed in the model, and the test says which change.

use super::proxy::Proxy;
use super::status::status;
use super::tables::{self, unbox};
use crate::inventory::{Cluster, FleetConfig, Technology};
use crate::probe::{ClusterStatus, Severity, fixture};
use crate::watch::{Readings, Section};

fn capture(name: &str) -> String {
    unbox(&fixture(&format!("proxysql/{name}.txt")))
}

/// The sections of one proxy's reading, in `reader::QUERIES`' order; None: an empty one.
fn reading(names: [Option<&str>; 6]) -> Result<Vec<Section>, String> {
    Ok(names
        .iter()
        .map(|n| Ok(n.map(capture).unwrap_or_default()))
        .collect())
}

/// zhanming's 3-node PXC behind ProxySQL 2.0.6: writer 2, backup 4, reader 3, offline 1.
fn healthy() -> Result<Vec<Section>, String> {
    reading([
        Some("runtime_mysql_servers-galera-healthy"),
        Some("mysql_galera_hostgroups"),
        Some("mysql_server_galera_log-healthy"),
        None,
        None,
        Some("stats_mysql_connection_pool-galera-chosen-columns"),
    ])
}

fn hosts() -> Vec<(String, String)> {
    (1..=3)
        .map(|i| (format!("maria-0{i}"), format!("10.11.0.8{i}")))
        .collect()
}

fn run(readings: Vec<Result<Vec<Section>, String>>) -> ClusterStatus {
    let cluster = Cluster {
        name: "proxysql".into(),
        technology: Technology::Proxysql,
        pools: vec![],
        hosts: vec!["proxysql-01".into(), "proxysql-02".into()],
    };
    let config = FleetConfig::default();
    let hosts = hosts();
    status(Readings {
        cluster: &cluster,
        config: &config,
        hosts: &hosts,
        readings: cluster.hosts.iter().cloned().zip(readings).collect(),
    })
    .unwrap()
}

fn whats(s: &ClusterStatus) -> Vec<String> {
    s.warnings.iter().map(|w| w.what.clone()).collect()
}

#[test]
fn every_capture_parses_by_column_name() {
    let servers =
        tables::servers(&tables::rows(&capture("runtime_mysql_servers-galera-healthy")).unwrap());
    assert_eq!(servers.len(), 6);
    assert_eq!(
        (
            servers[0].hostgroup,
            servers[0].hostname.as_str(),
            servers[0].port
        ),
        (2, "10.11.0.81", 3306)
    );
    assert!(servers.iter().all(|s| s.online()));
    assert_eq!(servers[1].weight, 100);

    let chosen = tables::servers(
        &tables::rows(&capture(
            "runtime_mysql_servers-galera-chosen-columns-shunned",
        ))
        .unwrap(),
    );
    assert_eq!(chosen.iter().filter(|s| s.shunned()).count(), 2);

    for g in [
        "mysql_galera_hostgroups",
        "mysql_galera_hostgroups-kubedb-empty-comment",
    ] {
        let g = tables::galera_hostgroups(&tables::rows(&capture(g)).unwrap());
        assert_eq!(
            (g[0].writer, g[0].backup_writer, g[0].reader, g[0].offline),
            (2, 4, 3, 1)
        );
        assert!(g[0].active);
        assert_eq!(g[0].max_writers, 1);
    }
    let vertical = tables::galera_hostgroups(
        &tables::rows(&capture("runtime_mysql_galera_hostgroups-vertical")).unwrap(),
    );
    assert_eq!(
        (
            vertical[0].writer,
            vertical[0].offline,
            vertical[0].writer_is_also_reader
        ),
        (10, 9999, 2)
    );

    let checks =
        tables::latest_checks(&tables::rows(&capture("mysql_server_galera_log-healthy")).unwrap());
    assert_eq!(checks.len(), 3);
    assert!(checks.iter().all(|c| c.primary_partition == Some(true)
        && c.wsrep_local_state == Some(4)
        && c.error.is_none()));
    assert!(checks.iter().all(|c| c.not_serving().is_none()));

    // The connect log's newest check of each server succeeded (the monitor user was
    // created after the first two failed); every ping in the ping log was refused.
    let connects = tables::latest_checks(
        &tables::rows(&capture("mysql_server_connect_log-access-denied")).unwrap(),
    );
    assert_eq!(connects.len(), 2);
    assert!(connects.iter().all(|c| c.error.is_none()), "{connects:?}");
    let pings = tables::latest_checks(
        &tables::rows(&capture("mysql_server_ping_log-access-denied")).unwrap(),
    );
    assert_eq!(pings.len(), 2);
    assert!(pings.iter().all(|c| {
        c.error
            .as_deref()
            .is_some_and(|e| e.starts_with("Access denied for user 'monitor'"))
    }));

    let pool = tables::pool(
        &tables::rows(&capture(
            "stats_mysql_connection_pool-galera-chosen-columns",
        ))
        .unwrap(),
    );
    assert_eq!(pool.len(), 6);
    assert_eq!(
        (pool[0].hostgroup, pool[0].host.as_str(), pool[0].latency_us),
        (2, "10.11.0.81", Some(1305))
    );
    assert_eq!(
        pool[0].conn_err, None,
        "a column the capture does not have reads as None"
    );
}

#[test]
fn a_server_error_is_not_a_table() {
    assert!(
        tables::rows("ERROR 1045 (28000): ProxySQL Error: Access denied for user 'kbz'").is_err()
    );
    assert!(tables::rows("").unwrap().is_empty());
}

#[test]
fn healthy_proxies_name_their_writer_and_routes() {
    let s = run(vec![healthy(), healthy()]);
    assert_eq!(whats(&s), Vec::<String>::new());
    assert_eq!(s.members[0].state, "writes to maria-01");
    assert!(s.members.iter().all(|m| m.up && m.role == "proxy"));
    assert_eq!(s.routes["writer 2"], ["maria-01"]);
    assert_eq!(s.routes["backup writer 4"], ["maria-03", "maria-02"]);
    assert_eq!(s.routes["reader 3"].len(), 3);
    assert!(s.leader.is_none() && s.quorum.is_none());
}

#[test]
fn writers_held_back_as_shunned_are_normal() {
    // KubeDB's PXC and safespring's MariaDB Galera: one writer ONLINE, the others SHUNNED in
    // the writer hostgroup, which is how ProxySQL holds writers beyond max_writers = 1.
    let kubedb = reading([
        Some("runtime_mysql_servers-galera-writer-shunned-max_writers"),
        Some("mysql_galera_hostgroups-kubedb-empty-comment"),
        None,
        None,
        None,
        None,
    ]);
    let s = run(vec![kubedb.clone(), kubedb]);
    assert_eq!(whats(&s), Vec::<String>::new());
    assert_eq!(
        s.members[0].state,
        "writes to xtradb-galera-2.xtradb-galera-pods.demo.svc"
    );
    let safespring = reading([
        Some("runtime_mysql_servers-galera-chosen-columns-shunned"),
        Some("runtime_mysql_galera_hostgroups-vertical"),
        None,
        None,
        None,
        None,
    ]);
    let s = run(vec![safespring.clone(), safespring]);
    assert_eq!(whats(&s), Vec::<String>::new());
    assert_eq!(s.routes["writer 10"], ["89.45.237.218"]);
}

#[test]
fn a_monitor_user_refused_is_critical_and_a_recovered_one_is_not() {
    let refused = reading([
        Some("runtime_mysql_servers-galera-healthy"),
        Some("mysql_galera_hostgroups"),
        None,
        Some("mysql_server_connect_log-access-denied"),
        Some("mysql_server_ping_log-access-denied"),
        None,
    ]);
    let s = run(vec![refused, healthy()]);
    let w: Vec<_> = s
        .warnings
        .iter()
        .filter(|w| w.what.contains("monitor user"))
        .collect();
    assert_eq!(w.len(), 2, "{:?}", whats(&s));
    assert!(
        w.iter()
            .all(|w| w.severity == Severity::Critical && w.what.starts_with("proxysql-01:"))
    );
    assert!(
        w[0].what.contains("cannot log in to 192.168.30.40"),
        "{}",
        w[0].what
    );
    assert!(w[0].fix.contains("mysql-monitor_password"));
}

/// One proxy's model from the healthy captures, changed by `change`.
fn changed(change: impl Fn(&mut Proxy)) -> Vec<crate::probe::Warning> {
    let mut p = proxy();
    change(&mut p);
    let other = Proxy {
        host: "proxysql-02".into(),
        ..proxy()
    };
    super::doctor::warnings(&[p, other], &|h: &str| super::proxy::name_of(&hosts(), h))
}

fn proxy() -> Proxy {
    let s = healthy().unwrap();
    let mut p = Proxy {
        host: "proxysql-01".into(),
        ..Proxy::default()
    };
    let t = |i: usize| tables::rows(s[i].as_ref().unwrap()).unwrap();
    p.servers = tables::servers(&t(0));
    p.galera = tables::galera_hostgroups(&t(1));
    p.checks = tables::latest_checks(&t(2));
    p
}

#[test]
fn an_empty_writer_hostgroup_every_server_shunned_and_two_writers_are_found() {
    // The writer (hostgroup 2's one server) SHUNNED.
    let w = changed(|p| p.servers[0].status = "SHUNNED".into());
    assert!(
        w.iter().any(|w| w.severity == Severity::Critical
            && w.what == "proxysql-01: writer hostgroup 2 has no ONLINE server"),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.what == "proxysql-01: not serving: maria-01 SHUNNED (hostgroup 2)")
    );
    assert!(
        !w.iter().any(|w| w.what.starts_with("the proxies write")),
        "a proxy with no writer is not a second writer"
    );

    // Every server SHUNNED.
    let w = changed(|p| {
        p.servers
            .iter_mut()
            .for_each(|s| s.status = "SHUNNED".into())
    });
    assert!(
        w.iter().any(|w| w.severity == Severity::Critical
            && w.what == "proxysql-01: no backend server is ONLINE"),
        "{w:?}"
    );

    // max_writers 2 in mysql_galera_hostgroups.
    let w = changed(|p| p.galera[0].max_writers = 2);
    assert!(
        w.iter().any(
            |w| w.what == "proxysql-01: max_writers = 2 for writer hostgroup 2"
                && w.fix.contains("SET max_writers = 1")
        ),
        "{w:?}"
    );

    // proxysql-01 writes to maria-02 (its hostgroup 2 server changed), proxysql-02 to maria-01.
    let w = changed(|p| p.servers[0].hostname = "10.11.0.82".into());
    assert!(w.iter().any(|w| w.what == "the proxies write to different members: proxysql-01 to maria-02; proxysql-02 to maria-01"), "{w:?}");

    // The monitor's newest Galera check of the writer: outside the Primary component.
    let w = changed(|p| p.checks[0].primary_partition = Some(false));
    assert!(w.iter().any(|w| w.severity == Severity::Critical && w.what == "proxysql-01 writes to maria-01, which its monitor sees outside the Primary component"), "{w:?}");
}

#[test]
fn a_silent_admin_marks_that_proxy_and_no_answer_at_all_is_an_error() {
    let s = run(vec![
        Err("127.0.0.1:6032: connection refused".into()),
        healthy(),
    ]);
    assert!(!s.members[0].up && s.members[1].up);
    assert_eq!(
        s.members[0].state,
        "down: 127.0.0.1:6032: connection refused"
    );
    assert!(
        whats(&s)
            .iter()
            .any(|w| w.starts_with("proxysql-01: ProxySQL's admin does not answer"))
    );
    let cluster = Cluster {
        name: "proxysql".into(),
        technology: Technology::Proxysql,
        pools: vec![],
        hosts: vec!["proxysql-01".into()],
    };
    let config = FleetConfig::default();
    let e = status(Readings {
        cluster: &cluster,
        config: &config,
        hosts: &[],
        readings: vec![(
            "proxysql-01".into(),
            Ok(vec![Err(
                "no /etc/kbz/secrets/proxysql_admin on the host".into()
            )]),
        )],
    })
    .unwrap_err();
    assert!(
        e.contains("proxysql-01: no /etc/kbz/secrets/proxysql_admin"),
        "{e}"
    );
}

/// A proxy whose servers are `servers`' rows (runtime_mysql_servers, or the connection
/// pool's, which `tables::servers` reads too) and whose Galera hostgroups are given.
fn with(servers: &str, galera: Vec<tables::GaleraHostgroups>) -> Vec<crate::probe::Warning> {
    let p = Proxy {
        host: "proxysql-01".into(),
        servers: tables::servers(&tables::rows(&capture(servers)).unwrap()),
        galera,
        ..Proxy::default()
    };
    super::doctor::warnings(&[p], &|h: &str| h.to_string())
}

fn galera(
    writer: u64,
    backup_writer: u64,
    reader: u64,
    offline: u64,
    max_writers: u64,
) -> Vec<tables::GaleraHostgroups> {
    vec![tables::GaleraHostgroups {
        writer,
        backup_writer,
        reader,
        offline,
        active: true,
        max_writers,
        writer_is_also_reader: 1,
    }]
}

#[test]
fn degraded_captures_are_named() {
    // sysown/proxysql#1883: every member in the offline hostgroup (its Galera hostgroups as
    // the issue gives them: writer 10, reader 20, backup 30, offline 40, max_writers 3).
    let w = with(
        "runtime_mysql_servers-galera-all-offline-hostgroup",
        galera(10, 30, 20, 40, 3),
    );
    let what: Vec<&str> = w.iter().map(|w| w.what.as_str()).collect();
    assert!(
        what.contains(&"proxysql-01: writer hostgroup 10 has no ONLINE server"),
        "{what:?}"
    );
    assert!(
        what.contains(&"proxysql-01: max_writers = 3 for writer hostgroup 10"),
        "{what:?}"
    );

    // Tusamarco's PXC failover test (writer 100, backup 102, reader 101, offline 9101): the
    // crashed writer SHUNNED in the reader hostgroup too; in the writer hostgroup the
    // SHUNNED ones are held back behind the ONLINE one.
    let w = with(
        "stats_mysql_connection_pool-galera-node-crash-connerr",
        galera(100, 102, 101, 9101, 1),
    );
    let what: Vec<&str> = w.iter().map(|w| w.what.as_str()).collect();
    assert_eq!(
        what,
        ["proxysql-01: not serving: 192.168.4.233 SHUNNED (hostgroup 101)"]
    );

    // Async replication (no Galera hostgroups): the stopped master SHUNNED.
    let w = with("stats_mysql_connection_pool-writer-shunned", vec![]);
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].what,
        "proxysql-01: not serving: mysql-master SHUNNED (hostgroup 10)"
    );
    assert_eq!(w[0].severity, Severity::Warning);

    // Percona's ProxySQL 1.x with a scheduler script: the stopped node OFFLINE_SOFT.
    let w = with("runtime_mysql_servers-offline-soft-node-down", vec![]);
    assert_eq!(
        w[0].what,
        "proxysql-01: not serving: 192.168.70.73 OFFLINE_SOFT (hostgroup 0)"
    );
}
