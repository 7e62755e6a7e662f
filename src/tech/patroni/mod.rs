//! PostgreSQL + Patroni, with etcd as its DCS. Each member reads the cluster from its own
//! etcd (`dcs`) and its own `/patroni` (`reader`); `view` makes a member's reading a view of
//! the cluster; the members' views become one status here; `feed` watches the leader key.

pub mod dcs;
pub mod feed;
pub mod reader;
pub mod view;

use super::{Feeds, Watching};
use crate::inventory::{Cluster, Fleet, Host};
use crate::probe::views::Views;
use crate::probe::{ClusterStatus, Member};
use crate::ssh::Pool;
use crate::ssh::quote::quote;
use crate::watch::http::Http;
use crate::watch::{Readings, failure, section};
use std::collections::BTreeMap;

pub const EPOCH: &str = "timeline";

/// Where an old leader's journal says how it followed again.
pub const REJOIN_LOG: super::RejoinLog = super::RejoinLog {
    unit: "patroni",
    grep: "pg_rewind exit code|running pg_rewind|trying to bootstrap|basebackup|replica has been created",
    read: |log, _| rejoined_by(log),
};

/// pg_rewind (and its exit code), a full clone, or neither, from Patroni's log lines.
pub fn rejoined_by(log: &str) -> String {
    if let Some(code) = log
        .lines()
        .find_map(|l| l.split("pg_rewind exit code=").nth(1))
    {
        format!("pg_rewind (exit code {})", code.trim())
    } else if log.contains("basebackup")
        || log.contains("trying to bootstrap")
        || log.contains("replica has been created")
    {
        "a full resync (basebackup)".into()
    } else {
        "following the new timeline (no rewind needed)".into()
    }
}

pub const WATCHING: Watching = Watching {
    reader: |pool, cluster, host| {
        let target = pool.target(host);
        let ip = host.ip_private.to_string();
        Box::new(reader::Member {
            rest: Http::new(pool, target.clone(), &ip, 8008),
            etcd: Http::new(pool, target, &ip, 2379),
            ip,
            scope: cluster.name.clone(),
            own_cache: String::new(),
        })
    },
    script,
    status,
    feed: Some(Feeds {
        native: native_feed,
        command: feed::command,
    }),
};

fn native_feed(pool: &Pool, cluster: &Cluster, host: &Host) -> Box<dyn crate::watch::Feed> {
    let target = pool.target(host);
    Box::new(feed::Leader {
        etcd: Http::new(pool, target, &host.ip_private.to_string(), 2379),
        key: feed::Leader::key(cluster),
        wait_index: None,
    })
}

/// The CLI path: the same sections as `reader`, from curl and etcdctl on member `on`.
fn script(fleet: &Fleet, cluster: &Cluster, on: &str, quick: bool) -> String {
    let endpoints: Vec<String> = cluster
        .hosts
        .iter()
        .filter_map(|h| fleet.host(h))
        .map(|h| format!("http://{}:2379", h.ip_private))
        .collect();
    [
        format!("curl -fsS --max-time 1 http://{}:8008/cluster", quote(on)),
        format!("curl -fsS --max-time 1 http://{}:8008/config", quote(on)),
        if quick {
            "true".to_string()
        } else {
            format!(
                "ETCDCTL_API=3 etcdctl --endpoints={} --dial-timeout=400ms --command-timeout=400ms endpoint health -w json 2>/dev/null",
                quote(&endpoints.join(","))
            )
        },
        // The member's own tags: the DCS has them only from its next HA cycle.
        format!("curl -fsS --max-time 1 http://{}:8008/patroni", quote(on)),
    ]
    .join(crate::watch::SEPARATOR)
}

/// The cluster from its members' readings: each member's view (see `view::status`), with
/// etcd's health as every member read it and each member's own tags, which hold whichever
/// view wins.
fn status(r: Readings<'_>) -> Result<ClusterStatus, String> {
    let etcd = etcd_health(&r);
    // Each member's own tags, by its address, for every view.
    let own: BTreeMap<String, view::Own> = r
        .readings
        .iter()
        .filter_map(|(on, reading)| {
            let own = section(reading.as_ref().ok()?, 3).and_then(view::Own::parse)?;
            Some((r.ip_of(on), own))
        })
        .collect();
    let mut views = Views::default();
    for (on, reading) in &r.readings {
        let view = match reading {
            Err(e) => Err(e.clone()),
            Ok(s) => match section(s, 0) {
                Some(c) => view::status(&r.cluster.name, c, section(s, 1), etcd.as_deref(), &own)
                    .map(|st| with_unlisted(st, r.cluster)),
                None => {
                    let fix = format!(
                        "check etcd and Patroni on {on}: `systemctl status etcd patroni`, `curl http://{}:2379/health`",
                        r.ip_of(on)
                    );
                    let what = format!(
                        "{on}: its view of the cluster cannot be read: {}",
                        failure(s, 0)
                    );
                    views.unreadable(what, fix);
                    continue;
                }
            },
        };
        views.add(view, |_| false);
    }
    views.believed(&r.cluster.name)
}

/// etcd's endpoints' health from the members' readings (section 2), one entry per endpoint
/// (an endpoint anyone found healthy is); members that could not be asked say their etcd is
/// unknown. None when no reading has it (a quick probe leaves it out).
fn etcd_health(r: &Readings<'_>) -> Option<Vec<view::EtcdHealth>> {
    let mut all: Vec<view::EtcdHealth> = Vec::new();
    let mut any = false;
    for (on, reading) in &r.readings {
        let listed = match reading {
            Ok(s) => match section(s, 2) {
                Some(t) => {
                    any = true;
                    view::etcd_health(t).unwrap_or_default()
                }
                None => continue,
            },
            Err(e) => vec![view::EtcdHealth {
                endpoint: format!("http://{}:2379", r.ip_of(on)),
                health: false,
                error: Some(e.clone()),
            }],
        };
        for h in listed {
            match all.iter_mut().find(|a| a.endpoint == h.endpoint) {
                Some(a) if h.health => *a = h,
                Some(_) => {}
                None => all.push(h),
            }
        }
    }
    // A member whose reading did not come in time (a frozen host holds its SSH channel
    // open and silent) still has its vote in etcd: it counts, unhealthy.
    for m in &r.cluster.hosts {
        let endpoint = format!("http://{}:2379", r.ip_of(m));
        if !all.iter().any(|a| a.endpoint == endpoint) {
            all.push(view::EtcdHealth {
                endpoint,
                health: false,
                error: Some(format!("{m} did not answer in time")),
            });
        }
    }
    any.then_some(all)
}

/// Members Patroni does not list at all are down to us.
fn with_unlisted(mut status: ClusterStatus, cluster: &Cluster) -> ClusterStatus {
    for h in &cluster.hosts {
        if !status.members.iter().any(|m| m.host == *h) {
            status.members.push(Member {
                host: h.clone(),
                role: "?".into(),
                state: "not in the cluster".into(),
                up: false,
                lag: None,
                epoch: None,
            });
        }
    }
    status
}

#[cfg(test)]
mod rejoin_tests {
    use super::rejoined_by;

    #[test]
    fn how_the_old_leader_rejoined() {
        // Lines as Patroni 3.0 logged them in the lab after a kill of the leader.
        let rewound = "2026-11-28 20:20:00,537 INFO: running pg_rewind from db-slave-01\n\
                       2026-11-28 20:20:01,355 INFO: pg_rewind exit code=0\n";
        assert_eq!(rejoined_by(rewound), "pg_rewind (exit code 0)");
        assert_eq!(
            rejoined_by("INFO: trying to bootstrap from leader 'db-slave-01'\n"),
            "a full resync (basebackup)"
        );
        assert_eq!(
            rejoined_by(""),
            "following the new timeline (no rewind needed)"
        );
    }
}
