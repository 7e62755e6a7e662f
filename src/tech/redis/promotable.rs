//! Can Sentinel promote a replica if the master dies now? Read from where each fact lives,
//! not from the one Sentinel whose view the prober believes: each replica's own
//! `INFO replication` (its `replica-priority` and link, as they are now), and each Sentinel's
//! cached copy of them. A Sentinel refreshes that copy from the replicas every 10 s, each on its
//! own clock, and once the master is down every second: so the elected Sentinel may act on
//! either value. The worst of them is the one this check assumes; a disagreement is said.

use super::sentinel::PER_SENTINEL;
use crate::probe::{ClusterStatus, Severity, Warning, host_name};
use std::collections::BTreeMap;

/// What a data node says of itself in `INFO replication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `master` or `slave`.
    pub role: String,
    pub priority: Option<u64>,
    /// `master_link_status:up` (replicas only).
    pub link_up: bool,
    /// `master_link_down_since_seconds`, when the link is down (-1: never up).
    pub link_down_s: Option<i64>,
}

impl Node {
    pub fn parse(info: &str) -> Option<Node> {
        let kv: BTreeMap<&str, &str> = info
            .lines()
            .filter_map(|l| l.trim().split_once(':'))
            .collect();
        Some(Node {
            role: kv.get("role")?.to_string(),
            priority: kv.get("slave_priority").and_then(|p| p.parse().ok()),
            link_up: kv.get("master_link_status").is_some_and(|s| *s == "up"),
            link_down_s: kv
                .get("master_link_down_since_seconds")
                .and_then(|s| s.parse().ok()),
        })
    }
}

/// A replica as one Sentinel has it cached (`SENTINEL REPLICAS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub host: String,
    pub priority: Option<u64>,
    pub down: bool,
}

/// What one member's probe read: its Sentinel's cache of the replicas, and its own data node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The host of this Sentinel and data node.
    pub on: String,
    /// None when this member's Sentinel did not answer.
    pub replicas: Option<Vec<Cached>>,
    pub node: Option<Node>,
    /// This Sentinel's `down-after-milliseconds` for the master.
    pub down_after_ms: Option<u64>,
}

impl Seen {
    /// From `SENTINEL MASTER` and `SENTINEL REPLICAS` as redis-cli prints them (None: the
    /// Sentinel did not answer) and the local `INFO replication`.
    pub fn read(
        on: &str,
        sentinel: Option<(&str, &str)>,
        info: &str,
        hosts: &[(String, String)],
    ) -> Seen {
        let down_after_ms = sentinel.and_then(|(master, _)| {
            super::pairs(master)
                .into_iter()
                .find(|(k, _)| k == "down-after-milliseconds")
                .and_then(|(_, v)| v.parse().ok())
        });
        let replicas = sentinel.map(|(_, r)| r);
        let replicas = replicas.map(|text| {
            super::sentinel::entries(text)
                .iter()
                .map(|e| Cached {
                    host: host_name(e.get("ip").map_or("?", String::as_str), hosts),
                    priority: e.get("slave-priority").and_then(|p| p.parse().ok()),
                    down: super::sentinel::is_down(e),
                })
                .collect()
        });
        Seen {
            on: on.to_string(),
            replicas,
            node: Node::parse(info),
            down_after_ms,
        }
    }
}

/// One replica's case, every source put together.
struct Replica<'a> {
    host: &'a str,
    /// Its own reading, when its host answered.
    own: Option<&'a Node>,
    /// (Sentinel's host, the priority it has cached) for each Sentinel that lists it.
    cached: Vec<(&'a str, Option<u64>)>,
    /// Down in every Sentinel's view that lists it, and not answering itself.
    down: bool,
    /// How long its link may have been down and Sentinel still promote it: 10 times
    /// down-after (Sentinel's own rule, counted from before the master went down).
    max_link_down_s: i64,
}

impl Replica<'_> {
    /// The priority the elected Sentinel may act on: the lowest any source has.
    fn worst_priority(&self) -> Option<u64> {
        self.own
            .and_then(|n| n.priority)
            .into_iter()
            .chain(self.cached.iter().filter_map(|(_, p)| *p))
            .min()
    }

    /// Its own link state wins over the Sentinels' copy of it: it is the one Sentinel reads
    /// (every second) once the master is down. A link down for a moment (a resync, a master
    /// restarting) still counts: Sentinel only skips a replica whose link has been down
    /// longer than `max_link_down_s`.
    fn replicating(&self) -> bool {
        match self.own {
            Some(n) => {
                n.role == "slave"
                    && (n.link_up
                        || self
                            .link_down_for()
                            .is_some_and(|d| d <= self.max_link_down_s))
            }
            None => !self.down,
        }
    }

    /// How long its own link has been down, when it is (never up counts as forever).
    fn link_down_for(&self) -> Option<i64> {
        let n = self.own?;
        if n.link_up || n.role != "slave" {
            return None;
        }
        Some(match n.link_down_s {
            Some(s) if s >= 0 => s,
            Some(_) => i64::MAX,
            None => 0,
        })
    }

    fn eligible(&self) -> bool {
        !self.down && self.replicating() && self.worst_priority().is_some_and(|p| p > 0)
    }
}

/// The promotion warnings of `status` (which the believed view's leader names), from every
/// member's `seen`.
pub fn check(status: &mut ClusterStatus, seen: &[Seen]) {
    // Members answer in any order; warnings name them in a stable one.
    let mut seen: Vec<&Seen> = seen.iter().collect();
    seen.sort_by(|a, b| a.on.cmp(&b.on));
    let cluster = status.cluster.clone();
    let leader = status.leader.clone();
    let max_link_down_s = seen
        .iter()
        .filter_map(|s| s.down_after_ms)
        .min()
        .map_or(300, |ms| (ms * 10 / 1000) as i64);
    let mut names: Vec<&str> = seen
        .iter()
        .flat_map(|s| s.replicas.iter().flatten().map(|c| c.host.as_str()))
        .chain(
            seen.iter()
                .filter(|s| s.node.as_ref().is_some_and(|n| n.role == "slave"))
                .map(|s| s.on.as_str()),
        )
        .filter(|h| Some(*h) != leader.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    let replicas: Vec<Replica> = names
        .iter()
        .map(|host| {
            let own = seen
                .iter()
                .find(|s| s.on == *host)
                .and_then(|s| s.node.as_ref());
            let listed: Vec<(&str, &Cached)> = seen
                .iter()
                .filter_map(|s| {
                    let c = s.replicas.as_ref()?.iter().find(|c| c.host == *host)?;
                    Some((s.on.as_str(), c))
                })
                .collect();
            Replica {
                host,
                own,
                cached: listed.iter().map(|(on, c)| (*on, c.priority)).collect(),
                down: own.is_none() && !listed.is_empty() && listed.iter().all(|(_, c)| c.down),
                max_link_down_s,
            }
        })
        .collect();
    let w = &mut status.warnings;
    for r in &replicas {
        if let Some(stale) = disagreement(r) {
            w.push(stale);
        }
        if let Some(d) = r.link_down_for() {
            let (what, why) = if d <= r.max_link_down_s {
                (
                    format!("replica {} has its link to the master down ({d} s)", r.host),
                    format!(
                        "Sentinel stops counting it as a candidate once its link has been down \
                         {} s (10 x down-after)",
                        r.max_link_down_s
                    ),
                )
            } else {
                (
                    format!(
                        "replica {} has its link to the master down{}",
                        r.host,
                        if d == i64::MAX {
                            String::new()
                        } else {
                            format!(" ({d} s)")
                        }
                    ),
                    format!(
                        "a replica whose link has been down over {} s (10 x down-after) is not \
                         a candidate for promotion",
                        r.max_link_down_s
                    ),
                )
            };
            w.push(Warning {
                severity: Severity::Warning,
                what,
                why,
                fix: format!("check masterauth and the network on {}", r.host),
            });
        }
    }
    let down: Vec<&str> = replicas.iter().filter(|r| r.down).map(|r| r.host).collect();
    if !replicas.iter().any(Replica::eligible) {
        w.push(no_candidate(&cluster, &replicas));
    } else if !down.is_empty() {
        w.push(Warning {
            severity: Severity::Warning,
            what: format!("replica {} down", down.join(", ")),
            why: "one fewer candidate for promotion".into(),
            fix: "systemctl start redis-server on it; `journalctl -u redis-server` says why it stopped".into(),
        });
    }
}

/// "redis-02 has replica-priority 0; the Sentinel on redis-03 has not seen it yet (it has 100)".
fn disagreement(r: &Replica) -> Option<Warning> {
    let own = r.own?.priority?;
    let stale: Vec<(&str, u64)> = r
        .cached
        .iter()
        .filter_map(|(on, p)| p.filter(|p| *p != own).map(|p| (*on, p)))
        .collect();
    if stale.is_empty() {
        return None;
    }
    let on: Vec<&str> = stale.iter().map(|(on, _)| *on).collect();
    let mut had: Vec<String> = stale.iter().map(|(_, p)| p.to_string()).collect();
    if had.iter().all(|h| *h == had[0]) {
        had.truncate(1);
    }
    let who = match on.as_slice() {
        [one] => format!(
            "{PER_SENTINEL}{one} has not seen it yet (it has {})",
            had[0]
        ),
        _ => format!(
            "the Sentinels on {} have not seen it yet (they have {})",
            on.join(", "),
            had.join(", ")
        ),
    };
    Some(Warning {
        severity: Severity::Warning,
        what: format!("{} has replica-priority {own}; {who}", r.host),
        why: "a Sentinel acts on its cached copy until it next asks the replica (every 10 s, \
              every second once the master is down): the lower value may be the one in force \
              when the master dies"
            .into(),
        fix: "wait 10 s for the Sentinels to refresh; set the priority in redis.conf too, or a \
              restart brings the old one back"
            .into(),
    })
}

fn no_candidate(cluster: &str, replicas: &[Replica]) -> Warning {
    let zero = |r: &Replica| r.worst_priority() == Some(0);
    // Zero only in a Sentinel's copy: the replica itself has a priority again.
    let stale = |r: &Replica| zero(r) && r.own.is_some_and(|n| n.priority.is_some_and(|p| p > 0));
    let some_zero = replicas.iter().any(zero);
    let (why, fix) =
        if !replicas.is_empty() && replicas.iter().all(zero) && !replicas.iter().any(stale) {
            (
                "every replica has replica-priority 0, which tells Sentinel never to promote it"
                    .to_string(),
                "set replica-priority to a non-zero value on at least one replica (CONFIG SET \
             replica-priority 100, then in redis.conf)"
                    .to_string(),
            )
        } else if some_zero
            && replicas
                .iter()
                .all(|r| !r.replicating() || r.worst_priority() == Some(0))
        {
            (
                "every replica that replicates has replica-priority 0 in its own setting or in a \
             Sentinel's cached copy of it, and that copy may be the one in force when the \
             master dies"
                    .to_string(),
                "wait 10 s for the Sentinels to refresh what they know of the replicas, or set a \
             non-zero replica-priority on a replica"
                    .to_string(),
            )
        } else {
            (
                "every replica is down or not replicating".to_string(),
                "bring a replica back: systemctl start redis-server, check masterauth".to_string(),
            )
        };
    Warning {
        severity: Severity::Critical,
        what: format!("no replica of {cluster} can be promoted"),
        why,
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::fixture;

    fn hosts() -> Vec<(String, String)> {
        crate::probe::redis_hosts()
    }

    /// The healthy lab (master redis-01), as seen from every member, each reading edited:
    /// `cache(sentinel, text)` the Sentinel's `SENTINEL REPLICAS`, `own(host, text)` the data
    /// node's `INFO replication`.
    fn healthy(
        cache: impl Fn(&str, String) -> String,
        own: impl Fn(&str, String) -> String,
    ) -> ClusterStatus {
        let mut st = ClusterStatus {
            cluster: "redis".into(),
            technology: crate::inventory::Technology::Redis,
            members: vec![],
            leader: Some("redis-01".into()),
            epoch_name: "config-epoch",
            epoch: Some(0),
            quorum: None,
            warnings: vec![],
            routes: Default::default(),
            groups: Vec::new(),
            peers: false,
        };
        let seen: Vec<Seen> = hosts()
            .iter()
            .map(|(on, _)| {
                let info = if on == "redis-01" {
                    fixture("redis/info-replication-master.txt")
                } else {
                    fixture("redis/info-replication-replica.txt")
                };
                let replicas = cache(on, fixture("redis/sentinel-replicas-healthy.txt"));
                let master = fixture("redis/sentinel-master-healthy.txt");
                Seen::read(on, Some((&master, &replicas)), &own(on, info), &hosts())
            })
            .collect();
        check(&mut st, &seen);
        st
    }

    /// Captured after CONFIG SET replica-priority 0 on both replicas: redis-02's own INFO, or
    /// (a Sentinel's cache, 10 s later) `SENTINEL REPLICAS`, whichever `text` is.
    fn zero(text: String) -> String {
        if text.starts_with("# Replication") {
            fixture("redis/info-replication-replica-priority-0.txt")
        } else {
            fixture("redis/sentinel-replicas-priority-0-seen.txt")
        }
    }

    fn keep(_: &str, t: String) -> String {
        t
    }

    #[test]
    fn the_captured_outputs_read() {
        let n = Node::parse(&fixture("redis/info-replication-replica.txt")).unwrap();
        assert_eq!(
            (n.role.as_str(), n.priority, n.link_up),
            ("slave", Some(100), true)
        );
        let m = Node::parse(&fixture("redis/info-replication-master.txt")).unwrap();
        assert_eq!(m.role, "master");
        let s = Seen::read(
            "redis-02",
            Some((
                &fixture("redis/sentinel-master-healthy.txt"),
                &fixture("redis/sentinel-replicas-healthy.txt"),
            )),
            "",
            &hosts(),
        );
        let mut names: Vec<_> = s.replicas.unwrap().into_iter().map(|c| c.host).collect();
        names.sort();
        assert_eq!(names, ["redis-02", "redis-03"]);
        assert!(healthy(keep, keep).warnings.is_empty());
    }

    #[test]
    fn priority_zero_on_the_replicas_refuses_before_any_sentinel_has_seen_it() {
        // CONFIG SET replica-priority 0 on both replicas a moment ago: every Sentinel still
        // has 100 cached. The replicas' own word decides, and the Sentinels' lag is said.
        let st = healthy(keep, |_, t| zero(t));
        let w = &st.warnings;
        let no = w
            .iter()
            .find(|w| w.what == "no replica of redis can be promoted")
            .unwrap();
        assert_eq!(no.severity, Severity::Critical);
        assert!(
            no.why.starts_with("every replica has replica-priority 0"),
            "{no:?}"
        );
        assert!(w.iter().any(|w| w.what
            == "redis-02 has replica-priority 0; the Sentinels on redis-01, redis-02, redis-03 \
                have not seen it yet (they have 100)"));
    }

    #[test]
    fn a_sentinel_still_caching_zero_keeps_the_refusal() {
        // Priority back to 100 on the replicas; the Sentinel on redis-03 has not asked yet.
        let st = healthy(|on, t| if on == "redis-03" { zero(t) } else { t }, keep);
        let no = st
            .warnings
            .iter()
            .find(|w| w.severity == Severity::Critical)
            .unwrap();
        assert_eq!(no.what, "no replica of redis can be promoted");
        assert!(no.why.contains("cached copy"), "{no:?}");
        assert!(st.warnings.iter().any(|w| w.what
            == "redis-03 has replica-priority 100; the Sentinel on redis-03 has not seen it yet \
                (it has 0)"));
    }

    #[test]
    fn one_replica_left_is_enough_and_its_own_link_counts() {
        // redis-02 at priority 0, redis-03 fine: it still fails over.
        let st = healthy(keep, |on, t| if on == "redis-02" { zero(t) } else { t });
        assert!(st.warnings.iter().all(|w| w.severity == Severity::Warning));
        // redis-03's own link down for 38 s (captured after a wrong masterauth), over 10 x
        // down-after (3 s): not a candidate, though the Sentinels' copy still says ok.
        let link_down = |on: &str, t: String| match on {
            "redis-02" => zero(t),
            "redis-03" => fixture("redis/info-replication-replica-link-down.txt"),
            _ => t,
        };
        let st = healthy(keep, link_down);
        assert!(
            st.warnings.iter().any(|w| w.what
                == "replica redis-03 has its link to the master down (38 s)"
                && w.why.contains("over 30 s")),
            "{:?}",
            st.warnings
        );
        let no = st
            .warnings
            .iter()
            .find(|w| w.severity == Severity::Critical)
            .unwrap();
        assert_eq!(no.what, "no replica of redis can be promoted");
        // Down for a moment only (a resync, the master restarting): Sentinel would still pick
        // it, so it still fails over, and the link is said.
        let st = healthy(keep, |on, t| match on {
            "redis-03" => link_down(on, t).replace(
                "master_link_down_since_seconds:38",
                "master_link_down_since_seconds:2",
            ),
            _ => link_down(on, t),
        });
        assert!(
            st.warnings.iter().all(|w| w.severity == Severity::Warning),
            "{:?}",
            st.warnings
        );
        assert!(
            st.warnings
                .iter()
                .any(|w| w.what == "replica redis-03 has its link to the master down (2 s)")
        );
    }
}
