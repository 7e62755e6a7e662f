//! Running the probes: one batched command per cluster over the pooled connection of the first
//! member that answers (the others are tried in turn), its sections parsed into the model.
//! The commands are data: per technology, the shell that prints each section.

use super::promotable::Seen;
use super::{
    ClusterStatus, Member, Severity, Warning, haproxy, patroni, postgres, promotable, sentinel,
};
use crate::inventory::{Cluster, Fleet, FleetConfig, Host, Technology};
use crate::ssh::Pool;
use crate::ssh::quote::quote;
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
    let wrap = config
        .probe_wrap
        .get(&cluster.name)
        .or_else(|| config.probe_wrap.get(cluster.technology.id()));
    match wrap {
        Some(w) => w
            .replace("{stack}", &quote(&host.docker_stack))
            .replace("{}", &quote(command)),
        None => command.to_string(),
    }
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

/// The status of one cluster, from the first member whose probe parses.
pub async fn probe(
    pool: &Pool,
    fleet: &Fleet,
    cluster: &Cluster,
    config: &FleetConfig,
    quick: bool,
) -> Result<ClusterStatus, String> {
    let hosts: Vec<(String, String)> = fleet
        .hosts
        .iter()
        .map(|h| (h.hostname.clone(), h.ip_private.to_string()))
        .collect();
    if cluster.technology == Technology::Haproxy {
        return haproxy_status(pool, fleet, cluster, config).await;
    }
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
    let readings = read_members(pool, fleet, config, cluster, quick).await;
    combine(cluster, readings, &hosts)
}

/// What one member's probe printed, section by section, or why it did not answer.
type Reading = (String, Result<Vec<String>, String>);

/// Every member's probe at once: a dead member must not hold the others for its connect
/// timeout. Of the answers that arrive within a grace after the first, all are kept. A full
/// probe (doctor, the preflight) waits longer for the slow ones, whose own readings the
/// promotion checks need; a quick one (the console right after a change) wants the leader.
async fn read_members(
    pool: &Pool,
    fleet: &Fleet,
    config: &FleetConfig,
    cluster: &Cluster,
    quick: bool,
) -> Vec<Reading> {
    let grace_after_first = Duration::from_millis(if quick { 300 } else { 1500 });
    let mut racing: futures_util::stream::FuturesUnordered<_> = cluster
        .hosts
        .iter()
        .map(|on| async move {
            let text = match fleet.host(on).map(|h| h.ip_private.to_string()) {
                None => Err(format!("no host {on}")),
                Some(ip) => match script(fleet, cluster, &ip, quick) {
                    None => Err(format!("no probe for {} yet", cluster.technology.label())),
                    Some(cmd) => run_on(pool, fleet, config, cluster, on, cmd).await,
                },
            };
            (on.clone(), text.map(|t| sections(&t)))
        })
        .collect();
    let mut readings = Vec::new();
    let grace = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            r = futures_util::StreamExt::next(&mut racing) => match r {
                Some(reading) => {
                    if readings.is_empty() {
                        grace.as_mut().reset(tokio::time::Instant::now() + grace_after_first);
                    }
                    readings.push(reading);
                }
                None => break,
            },
            _ = &mut grace => break,
        }
    }
    readings
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
                Some(c) => patroni::status(&cluster.name, c, get(1), get(2), &own)
                    .map(|st| with_unlisted(st, cluster)),
                None => Err(format!("{on}: Patroni's REST API did not answer")),
            },
            _ => {
                seen.push(Seen::read(
                    on,
                    get(0).map(|_| get(1).unwrap_or("")),
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

async fn haproxy_status(
    pool: &Pool,
    fleet: &Fleet,
    cluster: &Cluster,
    config: &FleetConfig,
) -> Result<ClusterStatus, String> {
    let vip = config
        .vars
        .get("haproxy_vip")
        .map(|v| v.split('/').next().unwrap_or(v).to_string());
    let mut members = Vec::new();
    let mut holders = Vec::new();
    let mut backends: Option<BTreeMap<String, Vec<haproxy::Server>>> = None;
    let mut warnings = Vec::new();
    for h in &cluster.hosts {
        let Some(cmd) = script(fleet, cluster, h, false) else {
            continue;
        };
        match run_on(pool, fleet, config, cluster, h, cmd).await {
            Ok(text) => {
                let s = sections(&text);
                let parsed = s.first().map(|t| haproxy::parse(t));
                let up = matches!(parsed, Some(Ok(_)));
                if let Some(v) = &vip
                    && s.get(1).is_some_and(|a| a.contains(&format!(" {v}/")))
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
                state: e,
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
        technology: "haproxy".into(),
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
                let up = servers.iter().filter(|s| s.up()).map(|s| s.name.clone());
                (b.clone(), up.collect())
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::believe;
    use crate::probe::ClusterStatus;

    fn view(leader: Option<&str>, timeline: u64, from: &str) -> ClusterStatus {
        ClusterStatus {
            cluster: "postgres".into(),
            technology: from.into(),
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
