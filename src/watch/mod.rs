//! Watching the fleet without loading it: each member's services asked in their own protocols
//! (HTTP, RESP, PostgreSQL's) over the host's one SSH connection, on streams kept open between
//! probes, so that a console left open starts no process on the hosts. `http` and `resp`
//! carry the protocols, `shell` the host's own basics; what to ask each technology's members
//! is in its folder under `src/tech/`, behind the `Reader` and `Feed` traits here.

pub mod dial;
pub mod follow;
pub mod http;
pub mod mysql;
pub mod resp;
pub mod shell;
#[cfg(test)]
mod tests;

use crate::inventory::{Cluster, FleetConfig};
use crate::ssh::{Pool, Target};
use futures_util::future::BoxFuture;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;

/// One request's limit: a member slower than this is marked with the reason, not waited for.
pub const ASK: Duration = Duration::from_secs(1);

/// Between two sections of a CLI script: each section's output, then `::kbz-section` on a
/// line of its own (see `engine::probe`).
pub const SEPARATOR: &str = "; echo; echo ::kbz-section; ";

/// One section of a reading: what the service said, or why it could not be asked.
pub type Section = Result<String, String>;

/// What one member's probe read, section by section, or why the member could not be asked.
pub type Reading = (String, Result<Vec<Section>, String>);

/// What a probe asks of a member.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    /// Leave out what only a full probe needs (what a dead peer makes slow): the console's
    /// probes right after a change want the leader.
    pub quick: bool,
    /// Also what the member says of itself where asking costs the host something (Patroni's
    /// `/patroni`, a thread per request): every time for a one-shot probe, seldom when
    /// watching.
    pub own: bool,
}

/// One member's kept-alive connections to its own services.
pub trait Reader: Send {
    /// Its reading: the sections its technology's CLI script prints, in that order (an empty
    /// one for a service that did not answer), so one parser reads both paths.
    fn read<'a>(
        &'a mut self,
        pool: &'a Pool,
        target: &'a Target,
        ask: Ask,
    ) -> BoxFuture<'a, Vec<Section>>;
}

/// One member's change feed: what the cluster announces (Sentinel's events, etcd's watch).
pub trait Feed: Send {
    /// Follows the feed until it ends (Ok: it had answered, follow it again at once) or
    /// fails (Err: try again after a backoff); each change sends one `kick` (a full channel
    /// means a probe is already due: nothing is lost).
    fn follow<'a>(&'a mut self, kick: &'a mpsc::Sender<()>) -> BoxFuture<'a, Result<(), String>>;
}

/// The members' readings of one cluster, for its technology's `status`.
pub struct Readings<'a> {
    pub cluster: &'a Cluster,
    pub config: &'a FleetConfig,
    /// Every host of the fleet, by name and private address: services name their peers by
    /// address, people by name.
    pub hosts: &'a [(String, String)],
    pub readings: Vec<Reading>,
}

impl Readings<'_> {
    /// The private address of host `name` ("" when the fleet has no such host).
    pub fn ip_of(&self, name: &str) -> String {
        self.hosts
            .iter()
            .find(|(n, _)| n == name)
            .map_or(String::new(), |(_, ip)| ip.clone())
    }
}

/// A secret the modules left on the host (a root-only file under `/etc/kbz/secrets/`): one
/// small read when a connection is made, not per probe, never logged. None when the file is
/// not there (the service then needs none, or says why it refuses).
pub async fn secret(pool: &Pool, target: &Target, path: &str) -> Option<String> {
    let text = pool
        .probe_stdout(
            target,
            format!("cat {} 2>/dev/null", crate::ssh::quote::quote(path)),
            ASK * 5,
            "reading a secret",
        )
        .await
        .ok()?;
    let p = text.trim();
    (!p.is_empty()).then(|| p.to_string())
}

/// When a member's secret is read again: at its first probe, then at most once a minute
/// while its service is not connected (the password may have been rotated), never while it
/// is: one small read per connection, not per probe.
#[derive(Default)]
pub struct Reread(Option<std::time::Instant>);

impl Reread {
    pub fn due(&mut self, connected: bool) -> bool {
        let due = self
            .0
            .is_none_or(|at| !connected && at.elapsed() > Duration::from_secs(60));
        if due {
            self.0 = Some(std::time::Instant::now());
        }
        due
    }
}

/// Section `i` of a reading, None when it is empty or failed.
pub fn section(sections: &[Section], i: usize) -> Option<&str> {
    match sections.get(i) {
        Some(Ok(t)) if !t.is_empty() => Some(t),
        _ => None,
    }
}

/// Why section `i` of a reading has nothing: the failure, or "no answer".
pub fn failure(sections: &[Section], i: usize) -> &str {
    match sections.get(i) {
        Some(Err(e)) => e,
        _ => "no answer",
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
