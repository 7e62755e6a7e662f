//! Patroni and etcd: `/cluster` and `/config` from Patroni's REST API, `etcdctl endpoint
//! health -w json`. Patroni 3.0 reports a replica "running" whether it streams or not; the lag
//! it reports is what tells.

use crate::inventory::Technology;
use crate::probe::{ClusterStatus, Member, Quorum, Severity, Warning};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
struct Cluster {
    members: Vec<ClusterMember>,
    #[serde(default)]
    pause: bool,
}

#[derive(Debug, Deserialize)]
struct ClusterMember {
    name: String,
    role: String,
    state: String,
    timeline: Option<u64>,
    /// Bytes behind the leader, or "unknown" for a stopped member.
    lag: Option<serde_json::Value>,
    #[serde(default)]
    tags: Tags,
    /// Its PostgreSQL address: how its own `/patroni` reading is found.
    host: Option<String>,
}

/// What a member says of itself on `GET /patroni`: the tags it acts on from the moment it
/// reloads. Its member key in the DCS, which `/cluster` shows, follows on its next HA cycle:
/// 1 to 1.5 s later in the lab (loop_wait 2 s), measured with a reload of `nofailover`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Own {
    #[serde(default)]
    tags: Tags,
}

impl Own {
    pub fn parse(json: &str) -> Option<Own> {
        serde_json::from_str(json).ok()
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
struct Tags {
    #[serde(default)]
    nofailover: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct Config {
    pub maximum_lag_on_failover: Option<u64>,
    pub ttl: Option<u64>,
    #[serde(default)]
    pub synchronous_mode: bool,
    #[serde(default)]
    pub synchronous_mode_strict: bool,
}

/// One etcd endpoint's health, as `etcdctl endpoint health -w json` lists them, or as the
/// watcher reads each member's own `GET /health`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EtcdHealth {
    pub endpoint: String,
    pub health: bool,
    pub error: Option<String>,
}

/// `etcdctl endpoint health -w json`.
pub fn etcd_health(json: &str) -> Result<Vec<EtcdHealth>, String> {
    serde_json::from_str(json).map_err(|e| format!("etcd endpoint health: {e}"))
}

/// The cluster's status from `/cluster`, with `/config` and etcd's endpoint health if known.
///
/// Every rule below reads one member's `/cluster`, which is not that member's cache: Patroni
/// reads it from the DCS at each request, and the DCS is where Patroni's own failover decision
/// reads the same facts. So, unlike a Sentinel's copy of the replicas (see `promotable`), no
/// member's view can be staler than what Patroni will act on:
/// - leader and pause: the leader key and the `/config` key, written once, read by all;
/// - sync standby: the `/sync` key, the only member Patroni may promote in synchronous mode;
/// - nofailover: a candidate decides from its own tags, which reach its member key in the DCS
///   only on its next HA cycle: so the tags are read from each member's own `/patroni` too
///   (`own`, by address), the worst of the two decides, and a disagreement is said;
/// - lag: the leader's and each replica's positions as they publish them every loop_wait,
///   the same figures a candidate compares against the leader's last position in the DCS;
///   a lag is a moving snapshot, so it only ever warns;
/// - etcd's health: asked of every endpoint itself, not of one member.
pub fn status(
    cluster: &str,
    cluster_json: &str,
    config_json: Option<&str>,
    etcd_health: Option<&[EtcdHealth]>,
    own: &BTreeMap<String, Own>,
) -> Result<ClusterStatus, String> {
    let c: Cluster =
        serde_json::from_str(cluster_json).map_err(|e| format!("Patroni /cluster: {e}"))?;
    let config: Config = config_json
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let max_lag = config.maximum_lag_on_failover.unwrap_or(1_048_576);
    let mut warnings = Vec::new();
    let members: Vec<Member> = c
        .members
        .iter()
        .map(|m| Member {
            host: m.name.clone(),
            role: m.role.replace('_', " "),
            state: m.state.clone(),
            up: matches!(m.state.as_str(), "running" | "streaming"),
            lag: m.lag.as_ref().and_then(serde_json::Value::as_u64),
            epoch: m.timeline,
        })
        .collect();
    let leader = c
        .members
        .iter()
        .find(|m| m.role == "leader" && m.state == "running")
        .map(|m| m.name.clone());
    // Without a leader, the highest timeline a member is on: views compare by it.
    let epoch = c
        .members
        .iter()
        .find(|m| m.role == "leader")
        .and_then(|m| m.timeline)
        .or_else(|| c.members.iter().filter_map(|m| m.timeline).max());
    if leader.is_none() {
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!("{cluster} has no running leader"),
            why: "writes fail until Patroni elects one".into(),
            fix: "look at `journalctl -u patroni` on the members; check etcd is healthy".into(),
        });
    }
    if c.pause {
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!("{cluster} is in maintenance mode (paused)"),
            why: "Patroni does not fail over while paused: losing the leader leaves no primary"
                .into(),
            fix: format!("patronictl -c /etc/patroni/config.yml resume {cluster}"),
        });
    }
    let replicas: Vec<&ClusterMember> = c.members.iter().filter(|m| m.role != "leader").collect();
    for m in &replicas {
        if !matches!(m.state.as_str(), "running" | "streaming") {
            warnings.push(Warning {
                severity: Severity::Warning,
                what: format!("replica {} is {}", m.name, m.state),
                why: "one fewer member can take over".into(),
                fix: format!("systemctl start patroni on {}; `journalctl -u patroni` there says why it stopped", m.name),
            });
        } else if let Some(lag) = m.lag.as_ref().and_then(serde_json::Value::as_u64)
            && lag > max_lag
        {
            warnings.push(Warning {
                severity: Severity::Warning,
                what: format!("replica {} is {lag} bytes behind (maximum_lag_on_failover {max_lag})", m.name),
                why: "Patroni will not promote a replica that far behind".into(),
                fix: format!("check {}'s disk and network, and the leader's write load; it catches up by itself once the cause is gone", m.name),
            });
        }
    }
    let sync_ok = |m: &&&ClusterMember| m.role == "sync_standby" && m.state == "running";
    if config.synchronous_mode && leader.is_some() && !replicas.iter().any(|m| sync_ok(&m)) {
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!("{cluster} is in synchronous mode without a healthy sync standby"),
            why: if config.synchronous_mode_strict {
                "strict synchronous mode blocks every commit until a sync standby is back, and \
                 only a sync standby may be promoted"
                    .into()
            } else {
                "in synchronous mode Patroni promotes only the sync standby: losing the leader \
                 now leaves no primary"
                    .into()
            },
            fix: "bring a replica back streaming (Patroni makes it the sync standby), or turn \
                  synchronous mode off: patronictl edit-config -s synchronous_mode=false"
                .into(),
        });
    }
    let own_of = |m: &ClusterMember| m.host.as_ref().and_then(|h| own.get(h));
    for m in &c.members {
        if let Some(o) = own_of(m)
            && o.tags.nofailover != m.tags.nofailover
        {
            warnings.push(tags_lag(m, o));
        }
    }
    let eligible = replicas
        .iter()
        .filter(|m| !config.synchronous_mode || sync_ok(m))
        .filter(|m| {
            !m.tags.nofailover
                && !own_of(m).is_some_and(|o| o.tags.nofailover)
                && matches!(m.state.as_str(), "running" | "streaming")
                && m.lag
                    .as_ref()
                    .and_then(serde_json::Value::as_u64)
                    .is_some_and(|l| l <= max_lag)
        })
        .count();
    if leader.is_some() && !replicas.is_empty() && eligible == 0 && !c.pause {
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!("no replica of {cluster} can be promoted"),
            why: "every replica is stopped, lagging beyond maximum_lag_on_failover, or tagged nofailover: losing the leader leaves no primary".into(),
            fix: "bring a replica back streaming, or remove its nofailover tag in /etc/patroni/config.yml and reload".into(),
        });
    }
    let quorum = match etcd_health {
        Some(health) => {
            let q = Quorum {
                members: health.len(),
                up: health.iter().filter(|h| h.health).count(),
                needed: health.len() / 2 + 1,
            };
            for h in health.iter().filter(|h| !h.health) {
                warnings.push(Warning {
                    // One loss away counts as lost: the leader's own host runs a member.
                    severity: if q.survives() > 0 {
                        Severity::Warning
                    } else {
                        Severity::Critical
                    },
                    what: format!("etcd member {} is unhealthy ({})", h.endpoint, h.error.clone().unwrap_or_default()),
                    why: if q.survives() == 0 {
                        "etcd is one loss away from losing its quorum; without it Patroni demotes the leader".into()
                    } else {
                        "one fewer etcd vote".into()
                    },
                    fix: "systemctl start etcd on that host; `journalctl -u etcd` there says why it stopped".into(),
                });
            }
            Some(q)
        }
        None => None,
    };
    Ok(ClusterStatus {
        cluster: cluster.to_string(),
        technology: Technology::Patroni,
        members,
        leader,
        epoch_name: super::EPOCH,
        epoch,
        quorum,
        warnings,
        routes: Default::default(),
        groups: Vec::new(),
        peers: false,
    })
}

/// A member whose own tags its DCS key does not show yet.
fn tags_lag(m: &ClusterMember, own: &Own) -> Warning {
    let what = if own.tags.nofailover {
        format!(
            "{} is tagged nofailover; its key in the DCS does not say it yet",
            m.name
        )
    } else {
        format!(
            "{} is no longer tagged nofailover; its key in the DCS still says it is",
            m.name
        )
    };
    Warning {
        severity: Severity::Warning,
        what,
        why: "a member takes part in a leader race by its own tags, which reach the DCS on its \
              next HA cycle (loop_wait): until then the others see the old ones"
            .into(),
        fix: "nothing if it was reloaded a moment ago; else `patronictl reload` on it".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::fixture;

    #[test]
    fn healthy_cluster() {
        let s = status(
            "postgres",
            &fixture("patroni/cluster-healthy.json"),
            Some(&fixture("patroni/config.json")),
            Some(&etcd_health(&fixture("etcd/endpoint-health-healthy.json")).unwrap()),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(s.leader.as_deref(), Some("db-master-01"));
        assert_eq!(s.members.len(), 3);
        assert!(s.members.iter().all(|m| m.up));
        assert_eq!(s.members[1].lag, Some(0));
        assert_eq!(
            s.summary(),
            "3/3 up · leader db-master-01 · survives 1 loss · timeline 1"
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn stopped_replica_paused_cluster_and_etcd_member_down() {
        let s = status(
            "postgres",
            &fixture("patroni/cluster-replica-stopped.json"),
            None,
            None,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(s.summary(), "2/3 up · leader db-master-01 · timeline 1");
        assert_eq!(s.warnings[0].what, "replica db-slave-02 is stopped");
        let s = status(
            "postgres",
            &fixture("patroni/cluster-paused.json"),
            None,
            None,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(s.worst(), Some(Severity::Critical));
        assert!(s.warnings[0].what.contains("maintenance mode (paused)"));
        assert!(
            s.warnings[0]
                .fix
                .contains("patronictl -c /etc/patroni/config.yml resume")
        );
        let s = status(
            "postgres",
            &fixture("patroni/cluster-healthy.json"),
            None,
            Some(&etcd_health(&fixture("etcd/endpoint-health-one-down.json")).unwrap()),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            s.quorum,
            Some(Quorum {
                members: 3,
                up: 2,
                needed: 2
            })
        );
        assert!(s.summary().contains("survives 0 losses"), "{}", s.summary());
        assert!(
            s.warnings[0].why.contains("one loss away"),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn lagging_replicas_cannot_be_promoted() {
        let lagging =
            fixture("patroni/cluster-healthy.json").replace("\"lag\": 0", "\"lag\": 52428800");
        let s = status(
            "postgres",
            &lagging,
            Some(&fixture("patroni/config.json")),
            None,
            &Default::default(),
        )
        .unwrap();
        assert!(s.warnings.iter().any(|w| w.what == "replica db-slave-01 is 52428800 bytes behind (maximum_lag_on_failover 1048576)"), "{:?}", s.warnings);
        assert!(s.warnings.iter().any(|w| w.severity == Severity::Critical
            && w.what == "no replica of postgres can be promoted"));
    }

    #[test]
    fn synchronous_mode_needs_a_healthy_sync_standby() {
        let cluster = fixture("patroni/cluster-sync.json");
        let config = fixture("patroni/config-sync.json");
        let s = status(
            "postgres",
            &cluster,
            Some(&config),
            None,
            &Default::default(),
        )
        .unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.members[1].role, "sync standby");
        // The sync standby stopped, before Patroni names another (seen live for about 1 s).
        let none = cluster.replace(
            r#""role": "sync_standby", "state": "running""#,
            r#""role": "replica", "state": "stopped""#,
        );
        assert_ne!(none, cluster);
        let s = status("postgres", &none, Some(&config), None, &Default::default()).unwrap();
        let w = s
            .warnings
            .iter()
            .find(|w| w.what.contains("synchronous mode"))
            .unwrap();
        assert_eq!(w.severity, Severity::Critical);
        assert!(w.why.contains("promotes only the sync standby"), "{w:?}");
        // And the other replica, healthy, is not promotable in synchronous mode.
        assert!(
            s.warnings
                .iter()
                .any(|w| w.what == "no replica of postgres can be promoted")
        );
    }

    #[test]
    fn replicas_all_tagged_nofailover_cannot_be_promoted() {
        let cluster = fixture("patroni/cluster-healthy.json").replace(
            r#""role": "replica", "state": "running""#,
            r#""role": "replica", "state": "running", "tags": {"nofailover": true}"#,
        );
        let s = status(
            "postgres",
            &cluster,
            Some(&fixture("patroni/config.json")),
            None,
            &Default::default(),
        )
        .unwrap();
        let w = s
            .warnings
            .iter()
            .find(|w| w.what == "no replica of postgres can be promoted")
            .unwrap();
        assert!(w.fix.contains("nofailover"));
        assert_eq!(s.worst(), Some(Severity::Critical));
    }

    #[test]
    fn a_replica_s_own_nofailover_counts_before_the_dcs_shows_it() {
        // Both replicas reloaded with nofailover a moment ago: their own /patroni says so,
        // their keys in the DCS not yet.
        let tagged = Own::parse(&fixture("patroni/patroni-replica-nofailover.json")).unwrap();
        assert!(tagged.tags.nofailover);
        let plain = Own::parse(&fixture("patroni/patroni-replica.json")).unwrap();
        assert!(!plain.tags.nofailover);
        let own: BTreeMap<String, Own> = [("10.203.0.121", &tagged), ("10.203.0.122", &tagged)]
            .into_iter()
            .map(|(ip, o)| (ip.to_string(), o.clone()))
            .collect();
        let cluster = fixture("patroni/cluster-healthy.json");
        let config = fixture("patroni/config.json");
        let s = status("postgres", &cluster, Some(&config), None, &own).unwrap();
        assert!(s.warnings.iter().any(|w| w.severity == Severity::Critical
            && w.what == "no replica of postgres can be promoted"));
        assert!(s.warnings.iter().any(|w| w.what
            == "db-slave-01 is tagged nofailover; its key in the DCS does not say it yet"));
        // One replica still plain: it fails over, and only the tagged one is said.
        let own: BTreeMap<String, Own> = [("10.203.0.121", &tagged), ("10.203.0.122", &plain)]
            .into_iter()
            .map(|(ip, o)| (ip.to_string(), o.clone()))
            .collect();
        let s = status("postgres", &cluster, Some(&config), None, &own).unwrap();
        assert_eq!(s.worst(), Some(Severity::Warning), "{:?}", s.warnings);
        assert_eq!(s.warnings.len(), 1);
    }
}
