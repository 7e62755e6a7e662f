//! Redis Sentinel, as one Sentinel sees it: `SENTINEL MASTER`, `SENTINEL REPLICAS`,
//! `SENTINEL SENTINELS` and `SENTINEL CKQUORUM` (redis-cli's raw output). The warnings answer
//! "if the master (or one host) dies now, will Sentinel fail over, and if not, why".

use super::{ClusterStatus, Member, Quorum, Severity, Warning, host_name, pairs};
use std::collections::BTreeMap;

/// The outputs of one Sentinel, as captured.
pub struct Outputs<'a> {
    pub master: &'a str,
    pub replicas: &'a str,
    pub sentinels: &'a str,
    pub ckquorum: &'a str,
}

type Entry = BTreeMap<String, String>;

/// A list of map replies, flattened by redis-cli: a new entry starts at each `name`.
fn entries(text: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for (k, v) in pairs(text) {
        if k == "name" || out.is_empty() {
            out.push(Entry::new());
        }
        if let Some(e) = out.last_mut() {
            e.insert(k, v);
        }
    }
    out
}

fn flags(e: &Entry) -> Vec<&str> {
    e.get("flags")
        .map_or(Vec::new(), |f| f.split(',').collect())
}

/// Down as this Sentinel sees it: subjectively, objectively, or not even connected.
fn is_down(e: &Entry) -> bool {
    flags(e)
        .iter()
        .any(|f| matches!(*f, "s_down" | "o_down" | "disconnected"))
}

fn num(e: &Entry, k: &str) -> Option<u64> {
    e.get(k).and_then(|v| v.parse().ok())
}

/// `hosts`: (inventory name, address) of the ENV, to show members by name.
pub fn status(
    cluster: &str,
    out: &Outputs,
    hosts: &[(String, String)],
) -> Result<ClusterStatus, String> {
    let master: Entry = pairs(out.master).into_iter().collect();
    let ip = master
        .get("ip")
        .ok_or_else(|| format!("SENTINEL MASTER {cluster}: no ip in {:?}", out.master))?;
    let master_name = host_name(ip, hosts);
    let master_flags = flags(&master);
    let master_down = master_flags
        .iter()
        .any(|f| matches!(*f, "s_down" | "o_down"));
    let mut replicas = entries(out.replicas);
    // Sentinel lists replicas in no fixed order; a stable one keeps views comparable.
    replicas.sort_by(|a, b| a.get("ip").cmp(&b.get("ip")));
    let sentinels = entries(out.sentinels);
    let quorum_setting = num(&master, "quorum").unwrap_or(2) as usize;
    let mut members = vec![Member {
        host: master_name.clone(),
        role: "master".into(),
        state: if master_down {
            "down".into()
        } else {
            "up".into()
        },
        up: !master_down,
        lag: None,
        epoch: num(&master, "config-epoch"),
    }];
    let master_offset = replicas
        .iter()
        .filter_map(|r| num(r, "slave-repl-offset"))
        .max();
    for r in &replicas {
        let down = is_down(r);
        let link_ok = r.get("master-link-status").is_some_and(|s| s == "ok");
        let state = if down {
            "down"
        } else if !link_ok {
            "link down"
        } else {
            "streaming"
        };
        members.push(Member {
            host: host_name(r.get("ip").map_or("?", String::as_str), hosts),
            role: "replica".into(),
            state: state.into(),
            up: !down,
            lag: match (master_offset, num(r, "slave-repl-offset")) {
                (Some(m), Some(o)) => Some(m.saturating_sub(o)),
                _ => None,
            },
            epoch: None,
        });
    }
    // Every Sentinel: this one (up, it answered) and the others it knows.
    let total = sentinels.len() + 1;
    let sentinels_down = sentinels.iter().filter(|s| is_down(s)).count();
    let majority = total / 2 + 1;
    let q = Quorum {
        members: total,
        up: total - sentinels_down,
        // A failover needs `quorum` Sentinels to agree the master is down, and a majority of
        // all known Sentinels to elect the one that performs it.
        needed: quorum_setting.max(majority),
    };
    let mut warnings = Vec::new();
    if out.ckquorum.starts_with("NOQUORUM") || !q.reached() {
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!("the Sentinels of {cluster} cannot reach their quorum: {} of {total} up, {} needed", q.up, q.needed),
            why: format!("if {master_name} dies now, no failover happens ({})", out.ckquorum.trim()),
            fix: "start the stopped Sentinels (systemctl start redis-sentinel), and check they see each other (num-other-sentinels)".into(),
        });
    } else if q.survives() == 0 {
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!("the Sentinels of {cluster} are one loss away from no quorum ({} of {total} up, {} needed)", q.up, q.needed),
            why: format!("losing any host that runs a Sentinel, {master_name} included, leaves no Sentinel majority to fail over"),
            fix: format!("start the stopped Sentinels, or run {} Sentinels on separate hosts with quorum {}", 2 * q.needed - 1, q.needed),
        });
    }
    if num(&master, "num-other-sentinels").is_some_and(|n| (n as usize) + 1 < total) {
        warnings.push(Warning {
            severity: Severity::Warning,
            what: "Sentinels disagree on how many they are".into(),
            why: "a Sentinel that does not see the others cannot vote with them".into(),
            fix: "check `sentinel announce-ip` and that port 26379 is open between the hosts"
                .into(),
        });
    }
    for r in &replicas {
        let name = host_name(r.get("ip").map_or("?", String::as_str), hosts);
        if r.get("master-link-status").is_some_and(|s| s != "ok") && !flags(r).contains(&"s_down") {
            warnings.push(Warning {
                severity: Severity::Warning,
                what: format!("replica {name} has its link to the master down"),
                why: "a replica that is not replicating is not a candidate for promotion".into(),
                fix: format!("check masterauth and the network on {name}"),
            });
        }
    }
    let eligible = replicas
        .iter()
        .filter(|r| {
            !is_down(r)
                && num(r, "slave-priority").is_some_and(|p| p > 0)
                && r.get("master-link-status").is_some_and(|s| s == "ok")
        })
        .count();
    if eligible == 0 {
        let all_zero =
            !replicas.is_empty() && replicas.iter().all(|r| num(r, "slave-priority") == Some(0));
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!("no replica of {cluster} can be promoted"),
            why: if all_zero {
                "every replica has replica-priority 0, which tells Sentinel never to promote it".into()
            } else {
                "every replica is down or not replicating".into()
            },
            fix: if all_zero {
                "set replica-priority to a non-zero value on at least one replica (CONFIG SET replica-priority 100, then in redis.conf)".into()
            } else {
                "bring a replica back: systemctl start redis-server, check masterauth".into()
            },
        });
    } else if replicas.iter().any(|r| flags(r).contains(&"s_down")) {
        let down: Vec<String> = replicas
            .iter()
            .filter(|r| flags(r).contains(&"s_down"))
            .map(|r| host_name(r.get("ip").map_or("?", String::as_str), hosts))
            .collect();
        warnings.push(Warning {
            severity: Severity::Warning,
            what: format!("replica {} down", down.join(", ")),
            why: "one fewer candidate for promotion".into(),
            fix: "systemctl start redis-server on it; `journalctl -u redis-server` says why it stopped".into(),
        });
    }
    Ok(ClusterStatus {
        cluster: cluster.to_string(),
        technology: "redis".into(),
        members,
        leader: (!master_down).then_some(master_name),
        epoch_name: "config-epoch",
        epoch: num(&master, "config-epoch"),
        quorum: Some(q),
        warnings,
        routes: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn hosts() -> Vec<(String, String)> {
        (123..=125)
            .enumerate()
            .map(|(i, o)| (format!("redis-0{}", i + 1), format!("10.203.0.{o}")))
            .collect()
    }

    fn load(state: &str) -> ClusterStatus {
        load_with(state, |r| r)
    }

    /// A captured state, its replicas' output edited first (for cases derived from it).
    fn load_with(state: &str, edit: impl Fn(String) -> String) -> ClusterStatus {
        let (m, r, s, c) = (
            fixture(&format!("redis/sentinel-master-{state}.txt")),
            edit(fixture(&format!("redis/sentinel-replicas-{state}.txt"))),
            fixture(&format!("redis/sentinel-sentinels-{state}.txt")),
            fixture(&format!("redis/ckquorum-{state}.txt")),
        );
        status(
            "redis",
            &Outputs {
                master: &m,
                replicas: &r,
                sentinels: &s,
                ckquorum: &c,
            },
            &hosts(),
        )
        .unwrap()
    }

    #[test]
    fn healthy() {
        let s = load("healthy");
        assert_eq!(s.leader.as_deref(), Some("redis-01"));
        assert_eq!(
            s.summary(),
            "3/3 up · leader redis-01 · survives 1 loss · config-epoch 0"
        );
        assert_eq!(s.members[1].state, "streaming");
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn replica_down_and_sentinels_down() {
        let s = load("replica-down");
        assert_eq!(
            s.summary(),
            "2/3 up · leader redis-01 · survives 1 loss · config-epoch 0"
        );
        assert_eq!(s.worst(), Some(Severity::Warning));
        assert_eq!(s.warnings[0].what, "replica redis-03 down");
        let s = load("two-sentinels-down");
        assert_eq!(
            s.quorum,
            Some(Quorum {
                members: 3,
                up: 1,
                needed: 2
            })
        );
        assert_eq!(s.worst(), Some(Severity::Critical));
        assert!(
            s.warnings[0]
                .what
                .contains("cannot reach their quorum: 1 of 3 up, 2 needed"),
            "{:?}",
            s.warnings
        );
        assert!(s.warnings[0].why.contains("NOQUORUM"));
    }

    #[test]
    fn replicas_with_priority_zero_cannot_be_promoted() {
        let st = load_with("healthy", |r| {
            r.replace("slave-priority\n100", "slave-priority\n0")
        });
        let w = st
            .warnings
            .iter()
            .find(|w| w.what == "no replica of redis can be promoted")
            .unwrap();
        assert!(w.why.contains("replica-priority 0"), "{w:?}");
        assert!(w.fix.contains("CONFIG SET replica-priority"));
    }
}
