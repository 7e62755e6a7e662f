//! Redis + Sentinel. Each member reads its Sentinel's view and its data node's own
//! replication state (`reader`); `sentinel` makes one Sentinel's answers a view of the
//! cluster; `promotable` decides from every source whether a replica can be promoted; `feed`
//! follows Sentinel's events.

pub mod client;
pub mod feed;
pub mod promotable;
pub mod reader;
pub mod sentinel;
pub mod workload;

use super::{Feeds, Watching};
use crate::inventory::{Cluster, Fleet, Host};
use crate::probe::ClusterStatus;
use crate::probe::views::Views;
use crate::ssh::Pool;
use crate::ssh::quote::quote;
use crate::watch::resp::Resp;
use crate::watch::{Readings, failure, section};
use promotable::Seen;

pub const EPOCH: &str = "config-epoch";

pub const WATCHING: Watching = Watching {
    reader: |pool, cluster, host| {
        let target = pool.target(host);
        Box::new(reader::Member {
            sentinel: Resp::new(pool, target.clone(), "127.0.0.1", 26379, None),
            node: Resp::new(pool, target, "127.0.0.1", 6379, None),
            name: cluster.name.clone(),
            password_read: None,
        })
    },
    script,
    status,
    feed: Some(Feeds {
        native: native_feed,
        command: feed::command,
    }),
};

fn native_feed(pool: &Pool, _: &Cluster, host: &Host) -> Box<dyn crate::watch::Feed> {
    Box::new(feed::Events {
        pool: pool.clone(),
        target: pool.target(host),
    })
}

/// The CLI path: the same sections as `reader`, from redis-cli on the member.
fn script(_: &Fleet, cluster: &Cluster, _on: &str, _quick: bool) -> String {
    let node = format!(
        "REDISCLI_AUTH=$(cat {} 2>/dev/null) redis-cli --no-auth-warning",
        reader::PASSWORD_FILE
    );
    let cli = format!("{node} -p 26379");
    let name = quote(&cluster.name);
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
    .join(crate::watch::SEPARATOR)
}

/// The cluster from its members' readings: each Sentinel's view (see `sentinel::status`),
/// the warnings about each Sentinel itself from every view, then whether a replica can be
/// promoted, from every replica's and every Sentinel's own word.
fn status(r: Readings<'_>) -> Result<ClusterStatus, String> {
    let mut views = Views::default();
    let mut seen: Vec<Seen> = Vec::new();
    for (on, reading) in &r.readings {
        let s = match reading {
            Ok(s) => s,
            Err(e) => {
                views.add(Err(e.clone()), |_| false);
                continue;
            }
        };
        let get = |i: usize| section(s, i);
        seen.push(Seen::read(
            on,
            get(0).map(|m| (m, get(1).unwrap_or(""))),
            get(6).unwrap_or(""),
            r.hosts,
        ));
        let view = match get(0) {
            Some(m) => sentinel::status(
                &r.cluster.name,
                &sentinel::Outputs {
                    on,
                    master: m,
                    replicas: get(1).unwrap_or(""),
                    sentinels: get(2).unwrap_or(""),
                    ckquorum: get(3).unwrap_or(""),
                    myid: get(4).unwrap_or(""),
                    info: get(5).unwrap_or(""),
                },
                r.hosts,
            ),
            None if s.get(6).is_some_and(|n| n.is_err()) => {
                // Both services silent: the host, most likely (cut off, frozen, overloaded).
                let what = format!(
                    "{on} does not answer kbz (its Sentinel and its data node are both silent): {}",
                    failure(s, 0)
                );
                let fix = "check the host: `kbz status --hosts`, its console; the other \
                           Sentinels mark it down after down-after-milliseconds if it is gone"
                    .to_string();
                views.unreadable(what, fix);
                continue;
            }
            None => {
                let what = format!("{on}: its Sentinel cannot be read: {}", failure(s, 0));
                let fix = format!(
                    "check the Sentinel on {on}: `systemctl status redis-sentinel`, `redis-cli -p 26379 PING`"
                );
                views.unreadable(what, fix);
                continue;
            }
        };
        views.add(view, sentinel::per_sentinel);
    }
    let mut best = views.believed(&r.cluster.name)?;
    promotable::check(&mut best, &seen);
    Ok(best)
}

/// Redis-style `key\nvalue\n` lists (redis-cli's raw output of a map reply).
pub fn pairs(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines
        .chunks(2)
        .filter_map(|c| match c {
            [k, v] => Some((k.to_string(), v.to_string())),
            _ => None,
        })
        .collect()
}
