//! Running the probes: one batched command per cluster over the pooled connection of the first
//! member that answers (the others are tried in turn), its sections parsed into the model.
//! The commands are data: per technology, the shell that prints each section.

use super::promotable::Seen;
use super::{ClusterStatus, Member, Warning, haproxy, patroni, postgres, promotable, sentinel};
use crate::inventory::{Cluster, Fleet, FleetConfig, Host, Technology};
use crate::ssh::Pool;
use crate::ssh::quote::quote;
use crate::watch::{Members, Reading, gather};
use std::collections::BTreeMap;
use std::time::Duration;

const SECTION: &str = "::kbz-section";

/// The probe script for a cluster, run on `on` (a member): each section's output, separated.
/// `quick`: leave out what a dead member makes slow (etcd's health waits for its timeout):
/// for the probes right after a change, when the leader is what matters.
fn script(fleet: &Fleet, cluster: &Cluster, on: &str, quick: bool) -> Option<String> {
    let ips: Vec<String> = cluster
        .hosts
        .iter()
        .filter_map(|h| fleet.host(h))
        .map(|h| h.ip_private.to_string())
        .collect();
    let sep = format!("; echo; echo {SECTION}; ");
    match cluster.technology {
        Technology::Patroni => {
            let endpoints: Vec<String> = ips.iter().map(|ip| format!("http://{ip}:2379")).collect();
            let parts = [
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
            ];
            Some(parts.join(&sep))
        }
        Technology::Redis => {
            let node = "REDISCLI_AUTH=$(cat /etc/kbz/secrets/redis_password 2>/dev/null) redis-cli --no-auth-warning";
            let cli = format!("{node} -p 26379");
            let name = quote(&cluster.name);
            Some(
                [
                    format!("{cli} SENTINEL MASTER {name}"),
                    format!("{cli} SENTINEL REPLICAS {name}"),
                    format!("{cli} SENTINEL SENTINELS {name}"),
                    format!("{cli} SENTINEL CKQUORUM {name}"),
                    format!("{cli} SENTINEL MYID"),
                    format!("{cli} INFO sentinel"),
                    // The data node's own settings: what Sentinel will find when it asks.
                    format!("{node} INFO replication"),
                ]
                .join(&sep),
            )
        }
        Technology::Haproxy => Some(
            "echo 'show stat' | socat - UNIX-CONNECT:/run/haproxy/admin.sock; echo; echo ::kbz-section; ip -o -4 addr show"
                .into(),
        ),
        _ => None,
    }
}

/// `command` as it must run on `host` for `cluster`: inside the cluster's container when
/// kbz.toml wraps its probes (`probe_wrap`, by cluster name, else by technology). `{}` takes
/// the command and `{stack}` the host's DOCKER_STACK, both quoted for the shell.
pub fn wrapped(config: &FleetConfig, cluster: &Cluster, host: &Host, command: &str) -> String {
    match wrap_of(config, cluster) {
        Some(w) => w
            .replace("{stack}", &quote(&host.docker_stack))
            .replace("{}", &quote(command)),
        None => command.to_string(),
    }
}

/// The cluster's `probe_wrap` (by cluster name, else by technology): set, the cluster is read
/// by the CLI path.
pub fn wrap_of<'a>(config: &'a FleetConfig, cluster: &Cluster) -> Option<&'a String> {
    config
        .probe_wrap
        .get(&cluster.name)
        .or_else(|| config.probe_wrap.get(cluster.technology.id()))
}

/// Runs `command` on `host` (wrapped as the cluster's config says); its stdout, or why not.
async fn run_on(
    pool: &Pool,
    fleet: &Fleet,
    config: &FleetConfig,
    cluster: &Cluster,
    host: &str,
    command: String,
) -> Result<String, String> {
    let h = fleet.host(host).ok_or_else(|| format!("no host {host}"))?;
    let target = pool.target(h);
    let command = wrapped(config, cluster, h, &command);
    pool.probe_stdout(&target, command, Duration::from_secs(8), "the probe")
        .await
}

fn sections(text: &str) -> Vec<String> {
    text.split(&format!("\n{SECTION}\n"))
        .map(|s| s.trim().to_string())
        .collect()
}

/// The status of one cluster, asked once (doctor, the preflight, `status`).
pub async fn probe(
    pool: &Pool,
    fleet: &Fleet,
    cluster: &Cluster,
    config: &FleetConfig,
    quick: bool,
) -> Result<ClusterStatus, String> {
    Watch::new(pool, fleet, cluster, config, Duration::ZERO)
        .probe(quick)
        .await
}

/// One cluster watched: the same probe again and again, on connections kept between probes.
pub struct Watch<'a> {
    pool: &'a Pool,
    fleet: &'a Fleet,
    cluster: &'a Cluster,
    config: &'a FleetConfig,
    /// The native readers, or None for the CLI path (below).
    native: Option<Members>,
}

impl<'a> Watch<'a> {
    /// Natively when the technology has a native reader, unless kbz.toml wraps the cluster's
    /// probes (`probe_wrap`: its services in containers, their ports not reachable from the
    /// host): then the CLI path, which starts a shell and the services' CLIs on a member for
    /// every probe. It is the costly path, kept for that case only. `own_every`: see
    /// `Members` (zero for a one-shot probe).
    pub fn new(
        pool: &'a Pool,
        fleet: &'a Fleet,
        cluster: &'a Cluster,
        config: &'a FleetConfig,
        own_every: Duration,
    ) -> Watch<'a> {
        let wrapped = wrap_of(config, cluster).is_some();
        Watch {
            pool,
            fleet,
            cluster,
            config,
            native: if wrapped {
                None
            } else {
                Members::new(pool, fleet, cluster, own_every)
            },
        }
    }

    pub async fn probe(&mut self, quick: bool) -> Result<ClusterStatus, String> {
        let (pool, fleet, cluster, config) = (self.pool, self.fleet, self.cluster, self.config);
        let hosts: Vec<(String, String)> = fleet
            .hosts
            .iter()
            .map(|h| (h.hostname.clone(), h.ip_private.to_string()))
            .collect();
        if cluster.technology == Technology::Postgres {
            // Every server answers for itself: there is no cluster view to ask.
            let nodes = cluster.hosts.iter().map(|h| async move {
                let node = run_on(pool, fleet, config, cluster, h, postgres::command())
                    .await
                    .and_then(|t| postgres::parse(&t));
                (h.clone(), node)
            });
            let nodes = futures_util::future::join_all(nodes).await;
            return Ok(postgres::status(&cluster.name, &nodes));
        }
        let readings = match self.native.as_mut() {
            Some(members) => members.read(quick).await,
            None => read_members(pool, fleet, config, cluster, quick).await,
        };
        match cluster.technology {
            Technology::Haproxy => haproxy::status(cluster, config, &readings),
            _ => combine(cluster, readings, &hosts),
        }
    }
}

/// The CLI path: every member's probe script, as `gather` runs them.
async fn read_members(
    pool: &Pool,
    fleet: &Fleet,
    config: &FleetConfig,
    cluster: &Cluster,
    quick: bool,
) -> Vec<Reading> {
    let reads = cluster.hosts.iter().map(|on| async move {
        let text = match fleet.host(on).map(|h| h.ip_private.to_string()) {
            None => Err(format!("no host {on}")),
            Some(ip) => match script(fleet, cluster, &ip, quick) {
                None => Err(format!("no probe for {} yet", cluster.technology.label())),
                Some(cmd) => run_on(pool, fleet, config, cluster, on, cmd).await,
            },
        };
        (on.clone(), text.map(|t| sections(&t)))
    });
    gather(reads, quick).await
}

/// The cluster's status from its members' readings: each member's view of the cluster
/// (`believe` picks one: members disagree for a moment after a failover), then what each
/// member says of itself, which holds whichever view wins.
fn combine(
    cluster: &Cluster,
    readings: Vec<Reading>,
    hosts: &[(String, String)],
) -> Result<ClusterStatus, String> {
    let mut views = Vec::new();
    let mut errors = Vec::new();
    let mut per_member: Vec<Warning> = Vec::new();
    let mut seen: Vec<Seen> = Vec::new();
    let ip_of = |on: &str| {
        hosts
            .iter()
            .find(|(n, _)| n == on)
            .map_or(String::new(), |(_, ip)| ip.clone())
    };
    // Patroni: etcd's health as every member read it, one entry per endpoint (an endpoint
    // anyone found healthy is); members that could not be asked say their etcd is unknown.
    let etcd = (cluster.technology == Technology::Patroni)
        .then(|| etcd_health(&readings, &cluster.hosts, &ip_of))
        .flatten();
    // Patroni: each member's own tags, by its address, for every view.
    let own: BTreeMap<String, patroni::Own> = readings
        .iter()
        .filter(|_| cluster.technology == Technology::Patroni)
        .filter_map(|(on, r)| {
            let own = r
                .as_ref()
                .ok()?
                .get(3)
                .and_then(|t| patroni::Own::parse(t))?;
            Some((ip_of(on), own))
        })
        .collect();
    for (on, reading) in &readings {
        let s = match reading {
            Ok(s) => s,
            Err(e) => {
                errors.push(e.clone());
                continue;
            }
        };
        let get = |i: usize| s.get(i).map(String::as_str).filter(|t| !t.is_empty());
        let view = match cluster.technology {
            Technology::Patroni => match get(0) {
                Some(c) => patroni::status(&cluster.name, c, get(1), etcd.as_deref(), &own)
                    .map(|st| with_unlisted(st, cluster)),
                None => Err(format!("{on}: Patroni's REST API did not answer")),
            },
            _ => {
                seen.push(Seen::read(
                    on,
                    get(0).map(|m| (m, get(1).unwrap_or(""))),
                    get(6).unwrap_or(""),
                    hosts,
                ));
                match get(0) {
                    Some(m) => sentinel::status(
                        &cluster.name,
                        &sentinel::Outputs {
                            on,
                            master: m,
                            replicas: get(1).unwrap_or(""),
                            sentinels: get(2).unwrap_or(""),
                            ckquorum: get(3).unwrap_or(""),
                            myid: get(4).unwrap_or(""),
                            info: get(5).unwrap_or(""),
                        },
                        hosts,
                    ),
                    None => Err(format!("{on}: its Sentinel did not answer")),
                }
            }
        };
        match view {
            Ok(v) => {
                per_member.extend(
                    v.warnings
                        .iter()
                        .filter(|w| sentinel::per_sentinel(w))
                        .cloned(),
                );
                views.push(v);
            }
            Err(e) => errors.push(e),
        }
    }
    let mut best = believe(views).ok_or_else(|| {
        format!(
            "no member of {} answered: {}",
            cluster.name,
            errors.join("; ")
        )
    })?;
    for w in per_member {
        if !best.warnings.contains(&w) {
            best.warnings.push(w);
        }
    }
    if cluster.technology == Technology::Redis {
        promotable::check(&mut best, &seen);
    }
    Ok(best)
}

/// etcd's endpoints' health from the members' readings (section 2), None when no reading
/// has it (a quick probe leaves it out).
fn etcd_health(
    readings: &[Reading],
    members: &[String],
    ip_of: &dyn Fn(&str) -> String,
) -> Option<Vec<patroni::EtcdHealth>> {
    let mut all: Vec<patroni::EtcdHealth> = Vec::new();
    let mut any = false;
    for (on, r) in readings {
        let listed = match r {
            Ok(s) => match s.get(2).filter(|t| !t.is_empty()) {
                Some(t) => {
                    any = true;
                    patroni::etcd_health(t).unwrap_or_default()
                }
                None => continue,
            },
            Err(e) => vec![patroni::EtcdHealth {
                endpoint: format!("http://{}:2379", ip_of(on)),
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
    for m in members {
        let endpoint = format!("http://{}:2379", ip_of(m));
        if !all.iter().any(|a| a.endpoint == endpoint) {
            all.push(patroni::EtcdHealth {
                endpoint,
                health: false,
                error: Some(format!("{m} did not answer in time")),
            });
        }
    }
    any.then_some(all)
}

/// Of the members' views, the one with the highest epoch (a newer election); between views
/// at the same epoch, the one most members share (a leader cut off from its peers names
/// itself until it is demoted, alone); then the one with a leader. Arrival order never
/// decides, so the poller does not flap between views.
pub fn believe(views: Vec<ClusterStatus>) -> Option<ClusterStatus> {
    let votes = |v: &ClusterStatus| {
        views
            .iter()
            .filter(|o| o.leader == v.leader && o.epoch == v.epoch)
            .count()
    };
    let key = |v: &ClusterStatus| (v.epoch, votes(v), v.leader.is_some());
    let mut best: Option<&ClusterStatus> = None;
    for v in &views {
        if best.is_none_or(|b| key(v) > key(b)) {
            best = Some(v);
        }
    }
    best.cloned()
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
mod tests {
    use super::believe;
    use crate::probe::ClusterStatus;

    fn view(leader: Option<&str>, timeline: u64, _member: &str) -> ClusterStatus {
        ClusterStatus {
            cluster: "postgres".into(),
            technology: crate::inventory::Technology::Patroni,
            members: vec![],
            leader: leader.map(str::to_string),
            epoch_name: "timeline",
            epoch: Some(timeline),
            quorum: None,
            warnings: vec![],
            routes: Default::default(),
        }
    }

    #[test]
    fn the_highest_epoch_wins_then_the_view_most_members_share_then_a_leader() {
        // A partition of the leader: it still names itself at timeline 4; the two others
        // already name the new leader, not yet promoted (same timeline). Whatever answers
        // first, the shared view wins.
        let isolated = view(Some("db-master-01"), 4, "db-master-01");
        let a = view(Some("db-slave-01"), 4, "db-slave-01");
        let b = view(Some("db-slave-01"), 4, "db-slave-02");
        for order in [
            vec![isolated.clone(), a.clone(), b.clone()],
            vec![a.clone(), isolated.clone(), b.clone()],
        ] {
            assert_eq!(
                believe(order).unwrap().leader.as_deref(),
                Some("db-slave-01")
            );
        }
        // A promotion moves the timeline: one member with it beats two stale ones.
        let promoted = view(Some("db-slave-01"), 5, "db-slave-01");
        let stale = view(Some("db-master-01"), 4, "db-slave-02");
        let got = believe(vec![stale.clone(), stale, promoted]).unwrap();
        assert_eq!(got.epoch, Some(5));
        // Two members see no leader at timeline 4, the cut-off one still names itself: the
        // majority is believed. Alone, a view with a leader beats one without.
        let none = view(None, 4, "db-slave-02");
        let got = believe(vec![isolated.clone(), none.clone(), none.clone()]).unwrap();
        assert_eq!(got.leader, None);
        let got = believe(vec![none, isolated]).unwrap();
        assert_eq!(got.leader.as_deref(), Some("db-master-01"));
        assert!(believe(vec![]).is_none());
    }
}
