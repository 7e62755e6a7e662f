//! Keeps every probed cluster's status fresh for the console: a probe every `interval` over the
//! pooled connections, and at once when the cluster itself announces a change (Sentinel's
//! `+switch-master`, `+sdown`...; etcd's watch on Patroni's leader key), so a new leader shows
//! within a probe's time of the cluster electing it, not an interval later.

use crate::engine::probe::Watch;
use crate::inventory::{Fleet, FleetConfig};
use crate::probe::ClusterStatus;
use crate::ssh::Pool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct ProbeEvent {
    pub cluster: String,
    pub status: Result<ClusterStatus, String>,
    /// When the probe that produced it started.
    pub at: Instant,
    /// The cluster announced a change just before (not the periodic probe).
    pub pushed: bool,
}

/// How often a watched cluster's members are asked what costs their host (Patroni's own
/// `/patroni`): the console shows a tag change within this; doctor and the preflight ask at
/// once.
/// The steady probe interval of the console and `status --watch`: changes come sooner, by
/// the clusters' own feeds, and every probe is a few requests on open streams.
pub const STEADY: Duration = Duration::from_secs(2);

const OWN_EVERY: Duration = Duration::from_secs(30);

/// One task per probed cluster (and one per change feed); abort the handles to stop them.
pub fn spawn(
    pool: &Pool,
    fleet: Arc<Fleet>,
    config: FleetConfig,
    interval: Duration,
    tx: mpsc::UnboundedSender<ProbeEvent>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for cluster in fleet
        .clusters
        .iter()
        .filter(|c| crate::tech::of(c.technology).watched())
    {
        let (kick_tx, mut kick_rx) = mpsc::channel::<()>(1);
        let feeds = crate::tech::of(cluster.technology)
            .watch
            .and_then(|w| w.feed);
        let wrapped = crate::engine::probe::wrap_of(&config, cluster).is_some();
        // Every member's feed: the first to announce a change wins (the Sentinel next to a
        // dead master is the last to hear of the new one).
        for h in cluster.hosts.iter().filter_map(|h| fleet.host(h)) {
            let Some(feeds) = feeds else { break };
            let feed: Box<dyn crate::watch::Feed> = if wrapped {
                let command = (feeds.command)(cluster).replace("{self}", &h.ip_private.to_string());
                Box::new(crate::watch::follow::Command {
                    pool: pool.clone(),
                    target: pool.target(h),
                    command: crate::engine::probe::wrapped(&config, cluster, h, &command),
                })
            } else {
                (feeds.native)(pool, cluster, h)
            };
            tasks.push(tokio::spawn(crate::watch::follow::follow(
                feed,
                kick_tx.clone(),
            )));
        }
        let (pool, fleet, config, tx, name) = (
            pool.clone(),
            fleet.clone(),
            config.clone(),
            tx.clone(),
            cluster.name.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Held here so that the kick channel stays open for a cluster without a feed:
            // a closed one would answer `recv` at once and spin this loop.
            let _kick = kick_tx;
            let Some(cluster) = fleet.clusters.iter().find(|c| c.name == name) else {
                return;
            };
            // Kept between probes: its streams stay open.
            let mut watch = match Watch::new(&pool, &fleet, cluster, &config, OWN_EVERY) {
                Ok(w) => w,
                Err(e) => {
                    let _ = tx.send(ProbeEvent {
                        cluster: cluster.name.clone(),
                        status: Err(e),
                        at: Instant::now(),
                        pushed: false,
                    });
                    return;
                }
            };
            let mut pushed = false;
            // After the cluster announced a change, or while it has no leader, probe every
            // 250 ms: members' views settle within a second of a failover, and the new leader
            // should show as soon as one of them knows it.
            let mut fast_until = Instant::now();
            let mut last: Option<Result<ClusterStatus, String>> = None;
            loop {
                let at = Instant::now();
                let quick = Instant::now() < fast_until;
                let mut status = watch.probe(quick).await;
                // A quick probe leaves the DCS's health out: keep what the last full one saw.
                if quick
                    && let (Ok(s), Some(Ok(prev))) = (status.as_mut(), last.as_ref())
                    && s.quorum.is_none()
                {
                    s.quorum = prev.quorum;
                }
                last = Some(status.clone());
                let leaderless = status
                    .as_ref()
                    .is_ok_and(|s| s.leader.is_none() && !s.peers);
                if pushed || leaderless {
                    fast_until = Instant::now() + Duration::from_secs(5);
                }
                let wait = if Instant::now() < fast_until {
                    Duration::from_millis(250)
                } else {
                    interval
                };
                let ev = ProbeEvent {
                    cluster: cluster.name.clone(),
                    status,
                    at,
                    pushed,
                };
                if tx.send(ev).is_err() {
                    return;
                }
                pushed = tokio::select! {
                    _ = tokio::time::sleep(wait) => false,
                    k = kick_rx.recv() => k.is_some(),
                };
                if pushed {
                    fast_until = Instant::now() + Duration::from_secs(5);
                }
            }
        }));
    }
    tasks
}
