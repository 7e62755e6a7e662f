//! Every watched technology's `status`, fed its members' readings as captured from the lab and
//! then damaged (cut short, bytes overwritten, sections missing or swapped, members that could
//! not be asked): it never panics, and what it returns holds together.

use super::REGISTRY;
use crate::inventory::{Cluster, FleetConfig, Technology};
use crate::probe::fixture;
use crate::watch::{Readings, Section};
use proptest::prelude::*;

/// Member `i`'s reading in a healthy cluster, section by section, as each technology's reader
/// returns it (the first member leads).
fn healthy(t: Technology, i: usize) -> Vec<String> {
    let f = |p: &str| fixture(p);
    match t {
        Technology::Patroni => vec![
            f("patroni/cluster-dcs-healthy.json"),
            f("patroni/config.json"),
            f("etcd/endpoint-health-healthy.json"),
            f("patroni/patroni-replica.json"),
        ],
        Technology::Redis => vec![
            f("redis/sentinel-master-healthy.txt"),
            f("redis/sentinel-replicas-healthy.txt"),
            f("redis/sentinel-sentinels-healthy.txt"),
            f("redis/ckquorum-healthy.txt"),
            f("redis/sentinel-myid-healthy.txt"),
            f("redis/info-sentinel-healthy.txt"),
            f("redis/info-replication-replica.txt"),
        ],
        Technology::Haproxy => vec![
            f("haproxy/show-stat-healthy.csv"),
            "10.203.0.10\n10.203.0.140".into(),
        ],
        Technology::Rabbitmq => vec![
            f("rabbitmq/nodes-healthy.json"),
            f("rabbitmq/queues-healthy.json"),
            f("rabbitmq/critical-healthy.json"),
            f(if i == 0 {
                "rabbitmq/metrics-leader.txt"
            } else {
                "rabbitmq/metrics-follower.txt"
            }),
            f("rabbitmq/config-pause-minority.txt"),
            String::new(),
        ],
        Technology::Galera => vec![
            f(&format!("galera/status-healthy-0{}.txt", i % 3 + 1)),
            f("galera/variables-module7.txt"),
            String::new(),
        ],
        // zhanming's PXC behind ProxySQL 2.0.6 (the same captures on both proxies).
        Technology::Proxysql => {
            let p = |n: &str| super::proxysql::tables::unbox(&f(&format!("proxysql/{n}.txt")));
            vec![
                p("runtime_mysql_servers-galera-healthy"),
                p("mysql_galera_hostgroups"),
                p("mysql_server_galera_log-healthy"),
                String::new(),
                String::new(),
                p("stats_mysql_connection_pool-galera-chosen-columns"),
            ]
        }
        Technology::Postgres if i == 0 => vec![f("postgres/primary.txt")],
        Technology::Postgres => vec![f("postgres/standby.txt")],
        other => panic!("no fixtures for {other}: a watched technology needs them here"),
    }
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Cut(usize),
    Overwrite(usize, Vec<u8>),
    Empty,
    SwapWith(usize),
    /// The service could not be asked.
    Failed,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        2 => any::<usize>().prop_map(Damage::Cut),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, b)| Damage::Overwrite(at, b)),
        1 => Just(Damage::Empty),
        1 => any::<usize>().prop_map(Damage::SwapWith),
        1 => Just(Damage::Failed),
    ]
}

fn damaged(sections: &[String], damages: &[Damage]) -> Vec<Section> {
    let mut out: Vec<Section> = sections.iter().cloned().map(Ok).collect();
    for (i, d) in damages.iter().enumerate().take(out.len()) {
        let s = sections[i].clone();
        out[i] = Ok(match d {
            Damage::None => s,
            Damage::Cut(at) => {
                let bytes = s.as_bytes();
                String::from_utf8_lossy(&bytes[..at % (bytes.len() + 1)]).into_owned()
            }
            Damage::Overwrite(at, with) => {
                let mut bytes = s.into_bytes();
                let at = at % (bytes.len() + 1);
                let end = (at + with.len()).min(bytes.len());
                bytes.splice(at..end, with.iter().copied());
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Damage::Empty => String::new(),
            Damage::SwapWith(j) => sections[j % sections.len()].clone(),
            Damage::Failed => {
                out[i] = Err("127.0.0.1:1: Connection refused".into());
                continue;
            }
        });
    }
    out
}

/// The lab's names and addresses, as the fixtures name them.
fn hosts() -> Vec<(String, String)> {
    let mut h = crate::probe::redis_hosts();
    for (name, o) in [
        ("db-master-01", 120),
        ("db-slave-01", 121),
        ("db-slave-02", 122),
        ("haproxy-01", 140),
        ("haproxy-02", 141),
        ("queue-01", 126),
        ("queue-02", 127),
        ("queue-03", 128),
    ] {
        h.push((name.into(), format!("10.203.0.{o}")));
    }
    h
}

fn cluster(t: Technology) -> Cluster {
    let hosts: &[&str] = match t {
        Technology::Patroni | Technology::Postgres => {
            &["db-master-01", "db-slave-01", "db-slave-02"]
        }
        Technology::Redis => &["redis-01", "redis-02", "redis-03"],
        Technology::Rabbitmq => &["queue-01", "queue-02", "queue-03"],
        Technology::Galera => &["maria-01", "maria-02", "maria-03"],
        Technology::Proxysql => &["proxysql-01", "proxysql-02"],
        _ => &["haproxy-01", "haproxy-02"],
    };
    Cluster {
        name: if t == Technology::Redis {
            "redis"
        } else {
            t.id()
        }
        .to_string(),
        technology: t,
        pools: vec![],
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_status_survives_damaged_readings(
        which in 0..REGISTRY.len(),
        damages in proptest::collection::vec(proptest::collection::vec(damage(), 8), 3),
        lost in proptest::collection::vec(0..4u8, 3),
    ) {
        let tech = &REGISTRY[which];
        let Some(watching) = tech.watch else { return Ok(()) };
        let cluster = cluster(tech.id);
        let hosts = hosts();
        let mut config = FleetConfig::default();
        config.vars.insert("haproxy_vip".into(), "10.203.0.10/24".into());
        let readings = cluster
            .hosts
            .iter()
            .zip(damages.iter().zip(&lost))
            .enumerate()
            .filter(|(_, (_, (_, lost)))| **lost != 0)
            .map(|(i, (h, (d, lost)))| {
                let reading = match lost {
                    1 => Err(format!("{h}: connection refused")),
                    _ => Ok(damaged(&healthy(tech.id, i), d)),
                };
                (h.clone(), reading)
            })
            .collect();
        let r = (watching.status)(Readings { cluster: &cluster, config: &config, hosts: &hosts, readings });
        if let Ok(s) = r {
            prop_assert_eq!(s.technology, tech.id);
            prop_assert_eq!(&s.cluster, &cluster.name);
            if let Some(q) = s.quorum {
                prop_assert!(q.up <= q.members, "{:?}", q);
            }
            for w in &s.warnings {
                prop_assert!(!w.what.is_empty());
            }
        }
    }
}

#[test]
fn the_healthy_readings_give_a_healthy_status() {
    // The property above is only as good as its starting point: undamaged, every watched
    // technology reads its fixtures as a cluster with a leader.
    for tech in REGISTRY.iter().filter(|t| t.watched()) {
        let cluster = cluster(tech.id);
        let hosts = hosts();
        let mut config = FleetConfig::default();
        config
            .vars
            .insert("haproxy_vip".into(), "10.203.0.10/24".into());
        let readings = cluster
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    h.clone(),
                    Ok(healthy(tech.id, i).into_iter().map(Ok).collect()),
                )
            })
            .collect();
        let watching = tech.watch.unwrap();
        let s = (watching.status)(Readings {
            cluster: &cluster,
            config: &config,
            hosts: &hosts,
            readings,
        })
        .unwrap_or_else(|e| panic!("{}: {e}", tech.id));
        if s.peers {
            assert!(s.members.iter().all(|m| m.up), "{}: {s:?}", tech.id);
            assert!(s.warnings.is_empty(), "{}: {s:?}", tech.id);
        } else {
            assert!(s.leader.is_some(), "{}: {s:?}", tech.id);
        }
    }
}
