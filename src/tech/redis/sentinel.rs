//! Redis Sentinel, as one Sentinel sees it: `SENTINEL MASTER`, `SENTINEL REPLICAS`,
//! `SENTINEL SENTINELS` and `SENTINEL CKQUORUM` (redis-cli's raw output). The warnings answer
//! "if the master (or one host) dies now, will Sentinel fail over, and if not, why".

use super::pairs;
use crate::inventory::Technology;
use crate::probe::{ClusterStatus, Member, Quorum, Severity, Warning, host_name};
use std::collections::BTreeMap;

/// The outputs of one Sentinel, as captured.
pub struct Outputs<'a> {
    /// The host this Sentinel runs on.
    pub on: &'a str,
    pub master: &'a str,
    pub replicas: &'a str,
    pub sentinels: &'a str,
    pub ckquorum: &'a str,
    /// `SENTINEL MYID`.
    pub myid: &'a str,
    /// `INFO sentinel` (TILT).
    pub info: &'a str,
}

/// Warnings about one Sentinel rather than the cluster ("the Sentinel on redis-02 ..."): the
/// prober keeps them from every member's view, not only from the view it believes.
pub(super) const PER_SENTINEL: &str = "the Sentinel on ";

pub fn per_sentinel(w: &Warning) -> bool {
    w.what.starts_with(PER_SENTINEL)
}

type Entry = BTreeMap<String, String>;

/// A list of map replies, flattened by redis-cli: a new entry starts at each `name`.
pub(super) fn entries(text: &str) -> Vec<Entry> {
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
pub(super) fn is_down(e: &Entry) -> bool {
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
    warnings.extend(own_checks(
        cluster, out, &master, &replicas, &sentinels, hosts,
    ));
    // Whether a replica can be promoted is not this Sentinel's to say alone: see
    // `promotable`, which reads every Sentinel's cache and the replicas themselves.
    Ok(ClusterStatus {
        cluster: cluster.to_string(),
        technology: Technology::Redis,
        members,
        leader: (!master_down).then_some(master_name),
        epoch_name: super::EPOCH,
        epoch: num(&master, "config-epoch"),
        quorum: Some(q),
        warnings,
        routes: Default::default(),
        groups: Vec::new(),
        peers: false,
    })
}

/// What is wrong with this Sentinel itself: an ID another Sentinel shares, TILT, a password
/// the data nodes refuse, known Sentinels that are not hosts of the fleet.
fn own_checks(
    cluster: &str,
    out: &Outputs,
    master: &Entry,
    replicas: &[Entry],
    sentinels: &[Entry],
    hosts: &[(String, String)],
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let me = out.on;
    let myid = out.myid.trim();
    let twins: Vec<String> = sentinels
        .iter()
        .filter(|e| !myid.is_empty() && e.get("runid").is_some_and(|r| r == myid))
        .map(|e| host_name(e.get("ip").map_or("?", String::as_str), hosts))
        .collect();
    if !twins.is_empty() {
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!(
                "{PER_SENTINEL}{me} shares its ID {} with the Sentinel on {}",
                myid.get(..8).unwrap_or(myid),
                twins.join(", ")
            ),
            why: "Sentinels with one ID take each other's messages for their own and their votes \
                  for one: the election that starts a failover cannot be trusted (a cloned \
                  sentinel.conf does this)"
                .into(),
            fix: "on the clone: systemctl stop redis-sentinel, delete the `sentinel myid` line \
                  from /etc/redis/sentinel.conf, start it (it makes a new ID); then SENTINEL RESET \
                  on each Sentinel, 30 s apart"
                .into(),
        });
    }
    let info: BTreeMap<&str, &str> = out
        .info
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .collect();
    if info.get("sentinel_tilt").is_some_and(|t| *t == "1") {
        let since = info
            .get("sentinel_tilt_since_seconds")
            .map_or(String::new(), |s| format!(" for {s} s"));
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!("{PER_SENTINEL}{me} is in TILT mode{since}"),
            why: "in TILT a Sentinel still watches but never acts: it neither votes a master down \
                  nor fails over, so it does not count towards the quorum"
                .into(),
            fix: format!(
                "TILT follows a clock jump or a stall of over 2 s: check the clock (chrony) and \
                 the load on {me}; it leaves TILT by itself after 30 s of normal timing"
            ),
        });
    }
    // A node that answers PING, but not with PONG, refuses this Sentinel: NOAUTH/WRONGPASS.
    let down_after = num(master, "down-after-milliseconds").unwrap_or(30_000);
    let refused: Vec<String> = std::iter::once(master)
        .chain(replicas.iter())
        .filter(|e| {
            num(e, "last-ping-reply").is_some_and(|r| r < down_after)
                && num(e, "last-ok-ping-reply").is_some_and(|r| r > down_after)
        })
        .map(|e| host_name(e.get("ip").map_or("?", String::as_str), hosts))
        .collect();
    if !refused.is_empty() {
        warnings.push(Warning {
            severity: Severity::Critical,
            what: format!(
                "{PER_SENTINEL}{me} is refused by {}: they answer its PING with an error",
                refused.join(", ")
            ),
            why: "its auth-pass does not match the data nodes' requirepass (NOAUTH/WRONGPASS): \
                  it sees healthy nodes as down, votes for needless failovers and cannot \
                  reconfigure replicas"
                .into(),
            fix: format!(
                "on {me}: SENTINEL SET {cluster} auth-pass <the requirepass of the data nodes>"
            ),
        });
    }
    let strangers: Vec<String> = sentinels
        .iter()
        .filter_map(|e| e.get("ip"))
        .filter(|ip| !hosts.iter().any(|(_, a)| a == *ip))
        .cloned()
        .collect();
    if !strangers.is_empty() {
        warnings.push(Warning {
            severity: Severity::Warning,
            what: format!(
                "{PER_SENTINEL}{me} still counts Sentinels at {}, which is no host of the inventory",
                strangers.join(", ")
            ),
            why: "stale Sentinels count in the total, so the majority needed to elect the one \
                  that fails over is higher than the live Sentinels may reach"
                .into(),
            fix: format!("SENTINEL RESET {cluster} on each Sentinel, one at a time, 30 s apart"),
        });
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::fixture;

    fn hosts() -> Vec<(String, String)> {
        crate::probe::redis_hosts()
    }

    fn load(state: &str) -> ClusterStatus {
        load_with(state, |r| r)
    }

    /// A captured state, its replicas' output edited first (for cases derived from it).
    fn load_with(state: &str, edit: impl Fn(String) -> String) -> ClusterStatus {
        load_edited(state, |file, text| {
            if file == "sentinel-replicas" {
                edit(text)
            } else {
                text
            }
        })
    }

    /// A captured state as seen by the Sentinel on redis-02, each file through `edit` (given
    /// its name) first. States without their own MYID / INFO use the healthy ones.
    fn load_edited(state: &str, edit: impl Fn(&str, String) -> String) -> ClusterStatus {
        let read = |file: &str| {
            let own = format!("redis/{file}-{state}.txt");
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/probes")
                .join(&own);
            let text = if path.exists() {
                fixture(&own)
            } else {
                fixture(&format!("redis/{file}-healthy.txt"))
            };
            edit(file, text)
        };
        let (m, r, s, c, id, info) = (
            read("sentinel-master"),
            read("sentinel-replicas"),
            read("sentinel-sentinels"),
            read("ckquorum"),
            read("sentinel-myid"),
            read("info-sentinel"),
        );
        let mut st = status(
            "redis",
            &Outputs {
                on: "redis-02",
                master: &m,
                replicas: &r,
                sentinels: &s,
                ckquorum: &c,
                myid: &id,
                info: &info,
            },
            &hosts(),
        )
        .unwrap();
        // This Sentinel's cache alone, as if no data node had answered for itself.
        let seen =
            crate::tech::redis::promotable::Seen::read("redis-02", Some((&m, &r)), "", &hosts());
        crate::tech::redis::promotable::check(&mut st, &[seen]);
        st
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

    #[test]
    fn shared_sentinel_id_is_critical() {
        // Captured with redis-03's sentinel.conf given redis-02's myid.
        let st = load_edited("duplicate-id", |file, text| {
            if file == "sentinel-myid" {
                fixture("redis/sentinel-myid-duplicate-redis-02.txt")
            } else {
                text
            }
        });
        let w = st
            .warnings
            .iter()
            .find(|w| w.what.contains("shares its ID"))
            .unwrap();
        assert_eq!(w.severity, Severity::Critical);
        assert_eq!(
            w.what,
            "the Sentinel on redis-02 shares its ID 7ed068cd with the Sentinel on redis-03"
        );
        assert!(w.fix.contains("delete the `sentinel myid` line"));
        assert!(per_sentinel(w));
    }

    #[test]
    fn a_sentinel_back_with_a_new_id_is_not_counted_twice() {
        // Redis 7 replaces the entry at the same address: nothing stale to reset.
        let st = load("stale-sentinel");
        assert_eq!(st.quorum.map(|q| q.members), Some(3));
        assert!(st.warnings.is_empty(), "{:?}", st.warnings);
    }

    #[test]
    fn tilt_is_critical() {
        let st = load_edited("healthy", |file, text| {
            if file == "info-sentinel" {
                text.replace("sentinel_tilt:0", "sentinel_tilt:1").replace(
                    "sentinel_tilt_since_seconds:-1",
                    "sentinel_tilt_since_seconds:12",
                )
            } else {
                text
            }
        });
        let w = st
            .warnings
            .iter()
            .find(|w| w.what.contains("TILT"))
            .unwrap();
        assert_eq!(w.what, "the Sentinel on redis-02 is in TILT mode for 12 s");
        assert_eq!(w.severity, Severity::Critical);
    }

    #[test]
    fn wrong_auth_pass_is_named() {
        // Captured after SENTINEL SET redis auth-pass not-the-password on redis-02.
        let st = load("auth-mismatch");
        let w = st
            .warnings
            .iter()
            .find(|w| w.what.contains("is refused by"))
            .unwrap();
        assert!(
            w.what
                .starts_with("the Sentinel on redis-02 is refused by redis-01"),
            "{w:?}"
        );
        assert!(w.why.contains("auth-pass does not match"));
        assert_eq!(
            w.fix,
            "on redis-02: SENTINEL SET redis auth-pass <the requirepass of the data nodes>"
        );
    }

    #[test]
    fn sentinels_outside_the_inventory_are_stale() {
        let st = load_edited("healthy", |file, text| {
            if file == "sentinel-sentinels" {
                text.replacen("10.203.0.125", "10.203.0.99", 1)
            } else {
                text
            }
        });
        let w = st
            .warnings
            .iter()
            .find(|w| w.what.contains("still counts"))
            .unwrap();
        assert!(w.what.contains("10.203.0.99"), "{w:?}");
        assert!(w.fix.starts_with("SENTINEL RESET redis"));
    }
}
