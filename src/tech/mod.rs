//! The technology registry: every technology kbz knows, and what kbz knows about it, in one
//! table. Every list the rest of the code needs ("which technologies are watched", "which
//! have a failover test", "which unit does a fault stop", "which protocol does this endpoint
//! speak") is a query of `REGISTRY`, never a list of its own.
//!
//! Adding a technology: a folder here with its reader, CLI script, parsers and status (its
//! `WATCHING`), fixtures captured from the real service, one line in `REGISTRY`, and its
//! module under `assets/modules/` (see docs/watching.md, "What a new technology touches").

pub mod galera;
pub mod haproxy;
pub mod patroni;
pub mod postgres;
#[cfg(test)]
mod props;
pub mod proxysql;
pub mod rabbitmq;
pub mod redis;
pub mod workload;

use crate::inventory::{Cluster, Fleet, Host, Technology};
use crate::probe::ClusterStatus;
use crate::ssh::{Pool, Tunnel};
use crate::watch::{Feed, Reader, Readings};
use futures_util::future::BoxFuture;
use std::time::Duration;
use workload::{Start, Writer};

/// How a technology's clusters are watched.
#[derive(Clone, Copy)]
pub struct Watching {
    /// A member's native reader: its services asked in their own protocols over its SSH
    /// connection.
    pub reader: fn(&Pool, &Cluster, &Host) -> Box<dyn Reader>,
    /// The CLI path (kbz.toml's `probe_wrap`): the shell that prints, on the member whose
    /// private address is given, the same sections as the reader; `quick` as in `watch::Ask`.
    pub script: fn(&Fleet, &Cluster, &str, bool) -> String,
    /// The cluster's status from its members' readings.
    pub status: fn(Readings<'_>) -> Result<ClusterStatus, String>,
    /// Its change feed, where the technology announces changes.
    pub feed: Option<Feeds>,
}

/// A technology's change feed, by both paths.
#[derive(Clone, Copy)]
pub struct Feeds {
    /// One member's feed, natively.
    pub native: fn(&Pool, &Cluster, &Host) -> Box<dyn Feed>,
    /// The CLI path's: a command that prints a line whenever the cluster changes (`{self}`:
    /// the member's private address).
    pub command: fn(&Cluster) -> String,
}

/// A failover test's client workload.
#[derive(Clone, Copy)]
pub struct Workload {
    /// The path its writes take to the leader, for the run's log.
    pub through: &'static str,
    pub start: fn(&Start) -> Result<Box<dyn Writer>, String>,
}

/// An endpoint's check in its technology's protocol: through the tunnel, authenticated with
/// the technology's secret when there is one; its round trip and what answered.
pub type EndpointCheck = for<'a> fn(
    &'a Tunnel,
    Option<&'a str>,
    &'a [(String, String)],
) -> BoxFuture<'a, Result<(Duration, String), String>>;

/// When an old leader, healed, counts as a follower again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejoin {
    /// As soon as the cluster names it a replica.
    Named,
    /// Once its own WAL receiver streams (Patroni calls a replica "running" before
    /// pg_rewind); how it got there is read from Patroni's journal.
    Streams,
}

/// Where a load balancer in front of a technology should send its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balanced {
    /// To the leader alone: it alone takes writes (PostgreSQL's primary, Redis's master).
    ToLeader,
    /// To every member that serves: any reaches the leader (RabbitMQ's nodes).
    ToServing,
}

/// What kbz knows of one technology.
#[derive(Clone, Copy)]
pub struct Tech {
    pub id: Technology,
    /// How its clusters are watched (the grid, `status`, doctor); None: only their hosts.
    pub watch: Option<Watching>,
    /// What its epoch is called: a new leader has a higher one.
    pub epoch: &'static str,
    /// Its epoch is read seconds after a new leader takes over (RabbitMQ's Raft term, from
    /// metrics refreshed on the queue's tick): a failover's new leader is the first
    /// different one, not the first with a higher epoch.
    pub epoch_lags: bool,
    /// The systemd unit a service fault (stop, kill) is about.
    pub unit: Option<&'static str>,
    /// The workload of its failover tests; None: no failover test for it yet.
    pub workload: Option<Workload>,
    /// Words in a load balancer's backend or endpoint name that mean this technology's
    /// leader is behind it (`postgres_primary`, `redis-master`).
    pub names: &'static [&'static str],
    /// The protocol its endpoints are checked in (see engine::endpoints).
    pub protocol: Option<&'static str>,
    /// Its endpoint check, where it has its own (else by protocol: HTTP, TCP).
    pub endpoint: Option<EndpointCheck>,
    /// The secret (its name in the modules' manifests) its clients authenticate with.
    pub secret: Option<&'static str>,
    pub rejoin: Rejoin,
    /// What the cross-check expects of a load balancer's backend for it.
    pub balanced: Balanced,
    /// How long a failover test keeps the fault in after the new leader shows: until the
    /// cluster has acted on it all (RabbitMQ's nodes declare each other down up to
    /// 1.25 x net_ticktime after a cut; healed inside that window, a cut leaves a partition
    /// that pause_minority never ends).
    pub settle: Duration,
    /// After the heal: why the healed member is where only a restart of its unit brings it
    /// back (RabbitMQ: a partition found after it healed, which pause_minority never ends),
    /// or None. A failover run restarts that unit on the host it faulted, and says so.
    pub stuck: Option<fn(&ClusterStatus, &str) -> Option<String>>,
    /// Where a healed old leader's journal says how it caught up, for the report.
    pub rejoin_log: Option<RejoinLog>,
}

/// A unit's journal lines (`grep -E` pattern) that say how a member caught up, and what
/// they say of that member ("pg_rewind (exit code 0)", "IST of 39 writesets from maria-03").
#[derive(Clone, Copy)]
pub struct RejoinLog {
    pub unit: &'static str,
    pub grep: &'static str,
    pub read: fn(&str, &str) -> String,
}

const fn tech(id: Technology) -> Tech {
    Tech {
        id,
        watch: None,
        epoch: "",
        epoch_lags: false,
        unit: None,
        workload: None,
        names: &[],
        protocol: None,
        endpoint: None,
        secret: None,
        rejoin: Rejoin::Named,
        balanced: Balanced::ToLeader,
        settle: Duration::from_secs(3),
        stuck: None,
        rejoin_log: None,
    }
}

/// Every technology, in the inventory's order.
pub const REGISTRY: [Tech; 9] = [
    Tech {
        watch: Some(patroni::WATCHING),
        epoch: patroni::EPOCH,
        unit: Some("patroni"),
        workload: Some(Workload {
            through: "the load balancers' address",
            start: postgres::workload::start,
        }),
        names: &["postgres", "pg"],
        protocol: Some("postgres"),
        endpoint: Some(postgres::client::check),
        secret: Some("pg_superuser_password"),
        rejoin: Rejoin::Streams,
        rejoin_log: Some(patroni::REJOIN_LOG),
        ..tech(Technology::Patroni)
    },
    Tech {
        watch: Some(postgres::WATCHING),
        epoch: postgres::EPOCH,
        unit: Some("postgresql"),
        names: &["postgres", "pg"],
        protocol: Some("postgres"),
        endpoint: Some(postgres::client::check),
        secret: Some("pg_superuser_password"),
        ..tech(Technology::Postgres)
    },
    Tech {
        watch: Some(redis::WATCHING),
        epoch: redis::EPOCH,
        unit: Some("redis-server"),
        workload: Some(Workload {
            through: "the Sentinel-discovered master",
            start: redis::workload::start,
        }),
        names: &["redis"],
        protocol: Some("redis"),
        endpoint: Some(redis::client::check),
        secret: Some("redis_password"),
        ..tech(Technology::Redis)
    },
    Tech {
        watch: Some(rabbitmq::WATCHING),
        epoch: rabbitmq::EPOCH,
        epoch_lags: true,
        unit: Some("rabbitmq-server"),
        workload: Some(Workload {
            through: "the load balancers' AMQP address",
            start: rabbitmq::workload::start,
        }),
        names: &["rabbitmq", "amqp"],
        protocol: Some("amqp"),
        endpoint: Some(rabbitmq::client::check),
        secret: Some("rabbitmq_password"),
        balanced: Balanced::ToServing,
        // net_ticktime 10 s (module 5): every node has declared the cut one down 12.5 s
        // after the cut at the latest, and a new leader shows 4-9 s after it.
        settle: Duration::from_secs(10),
        stuck: Some(rabbitmq::stuck),
        ..tech(Technology::Rabbitmq)
    },
    Tech {
        watch: Some(galera::WATCHING),
        epoch: galera::EPOCH,
        unit: Some("mariadb"),
        workload: Some(Workload {
            through: "the load balancers' MySQL address",
            start: galera::workload::start,
        }),
        names: &["galera", "mysql", "maria"],
        protocol: Some("mysql"),
        endpoint: Some(galera::client::check),
        secret: Some("galera_password"),
        rejoin_log: Some(galera::REJOIN_LOG),
        ..tech(Technology::Galera)
    },
    Tech {
        watch: Some(proxysql::WATCHING),
        ..tech(Technology::Proxysql)
    },
    Tech {
        watch: Some(haproxy::WATCHING),
        names: &["stats", "http"],
        protocol: Some("http"),
        ..tech(Technology::Haproxy)
    },
    tech(Technology::Minio),
    tech(Technology::K3s),
];

impl Tech {
    pub fn watched(&self) -> bool {
        self.watch.is_some()
    }
}

/// What kbz knows of `t`. The registry lists the technologies in the enum's order (a test
/// holds it to that), so this is an index, with no fallback to get wrong.
pub fn of(t: Technology) -> &'static Tech {
    &REGISTRY[t as usize]
}

/// The technology an endpoint named `name` serves (`postgres-primary`, `redis-master`,
/// `haproxy-stats`): the first whose words are in the name.
pub fn serving(name: &str) -> Option<&'static Tech> {
    named(name, |_| true)
}

/// The first technology `pick` selects whose words are in `name`.
fn named(name: &str, pick: impl Fn(&Tech) -> bool) -> Option<&'static Tech> {
    let name = name.to_ascii_lowercase();
    REGISTRY
        .iter()
        .filter(|t| pick(t))
        .find(|t| t.names.iter().any(|n| name.contains(n)))
}

/// The protocol an endpoint named `name` is checked in: its technology's, else plain TCP.
pub fn protocol(name: &str) -> &'static str {
    serving(name).and_then(|t| t.protocol).unwrap_or("tcp")
}

/// "Patroni, PostgreSQL, Redis Sentinel": the labels of the technologies `pick` selects.
pub fn labels(pick: impl Fn(&Tech) -> bool) -> String {
    REGISTRY
        .iter()
        .filter(|t| pick(t))
        .map(|t| t.id.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The technology whose leader a load balancer's backend (or endpoint) named `name` serves.
/// The first in the registry's order wins (Patroni before standalone PostgreSQL).
pub fn behind(name: &str) -> Option<&'static Tech> {
    named(name, |t| t.id != Technology::Haproxy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_technology_is_registered_once_in_the_enum_s_order() {
        for (i, t) in Technology::ALL.into_iter().enumerate() {
            assert_eq!(t as usize, i);
            assert_eq!(REGISTRY[i].id, t);
            assert_eq!(REGISTRY.iter().filter(|x| x.id == t).count(), 1, "{t}");
            assert_eq!(of(t).id, t);
        }
    }

    #[test]
    fn queries() {
        assert_eq!(
            labels(|t| t.workload.is_some()),
            "PostgreSQL + Patroni, Redis + Sentinel, RabbitMQ, MariaDB Galera"
        );
        assert_eq!(
            behind("galera_writer").map(|t| t.id),
            Some(Technology::Galera)
        );
        assert_eq!(
            behind("postgres_primary").map(|t| t.id),
            Some(Technology::Patroni)
        );
        assert_eq!(
            behind("redis-master").map(|t| t.id),
            Some(Technology::Redis)
        );
        assert!(behind("haproxy-stats").is_none());
        assert_eq!(of(Technology::Redis).unit, Some("redis-server"));
    }
}
