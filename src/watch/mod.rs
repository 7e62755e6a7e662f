//! Watching the fleet without loading it: each member's services asked in their own protocols
//! (HTTP, RESP) over the host's one SSH connection, on streams kept open between probes, so
//! that a console left open starts no process on the hosts. `http` and `resp` carry the
//! protocols; `members` knows what to ask each technology's members.

pub mod feed;
pub mod http;
pub mod members;
pub mod resp;
pub mod shell;

use crate::inventory::{Cluster, Fleet};
use crate::ssh::{Pool, Target};
use members::Member;
use std::future::Future;
use std::time::{Duration, Instant};

/// What one member's probe read, section by section, or why it could not be asked.
pub type Reading = (String, Result<Vec<String>, String>);

/// Every member of one cluster, with its kept-alive connections.
pub struct Members {
    pool: Pool,
    members: Vec<(String, Target, Member)>,
    /// How often the readings that cost the host something are taken (Patroni's `/patroni`,
    /// a thread there per request): every time for a one-shot probe, seldom when watching.
    own_every: Duration,
    own_at: Option<Instant>,
}

impl Members {
    /// None when the cluster's technology has no native reader.
    pub fn new(
        pool: &Pool,
        fleet: &Fleet,
        cluster: &Cluster,
        own_every: Duration,
    ) -> Option<Members> {
        let members = cluster
            .hosts
            .iter()
            .map(|h| {
                let target = pool.target(fleet.host(h)?);
                Some((h.clone(), target, Member::new(pool, fleet, cluster, h)?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Members {
            pool: pool.clone(),
            members,
            own_every,
            own_at: None,
        })
    }

    /// Every member's reading, gathered as `gather` does.
    pub async fn read(&mut self, quick: bool) -> Vec<Reading> {
        let own = self.own_at.is_none_or(|at| at.elapsed() >= self.own_every);
        if own {
            self.own_at = Some(Instant::now());
        }
        let pool = &self.pool;
        let reads = self
            .members
            .iter_mut()
            .map(|(host, target, member)| async move {
                // A host whose connection is down (or backed off) answers at once with why.
                let reading = match pool.connection(target).await {
                    Ok(_) => Ok(member.read(pool, target, quick, own).await),
                    Err(state) => Err(state.explain(host)),
                };
                (host.clone(), reading)
            });
        gather(reads, quick).await
    }
}

/// Runs every member's read at once: a dead member must not hold the others for its
/// timeout. Of the answers that arrive within a grace after the first, all are kept. A full
/// probe (doctor, the preflight) waits longer for the slow ones, whose own readings the
/// promotion checks need; a quick one (the console right after a change) wants the leader.
pub async fn gather<F>(reads: impl Iterator<Item = F>, quick: bool) -> Vec<Reading>
where
    F: Future<Output = Reading>,
{
    let grace_after_first = Duration::from_millis(if quick { 300 } else { 1500 });
    let mut racing: futures_util::stream::FuturesUnordered<F> = reads.collect();
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
