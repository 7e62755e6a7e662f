//! How an old leader comes back: whether it really follows (PostgreSQL: its WAL receiver
//! streams; Patroni 3.0 calls a replica "running" even while its timeline has forked off and
//! it waits for pg_rewind), and what it took (pg_rewind or a full clone; Galera's IST or SST),
//! from its journal.

use super::ctx::Ctx;
use crate::ssh::quote::quote;
use crate::tech::RejoinLog;
use std::time::{Duration, Instant};

/// How long a stuck state must hold after the heal before the run restarts the member: the
/// service's own recovery (RabbitMQ pausing the minority and starting it again) takes a few
/// seconds, and a restart must not race it.
const STUCK_FOR: Duration = Duration::from_secs(15);

/// Whether the healed member stays where only a restart brings it back (the registry's
/// `stuck`), seen on every status after the heal.
#[derive(Default)]
pub struct Unstick {
    since: Option<Instant>,
    /// Why the run restarted the member, once it did.
    pub restarted: Option<String>,
}

impl Unstick {
    /// Why to restart now: the member has been stuck for STUCK_FOR without a break, and was
    /// not restarted yet (once only: a second restart would hide what the first did not fix).
    pub fn due(&mut self, why: Option<String>) -> Option<String> {
        let Some(why) = why else {
            self.since = None;
            return None;
        };
        let since = *self.since.get_or_insert_with(Instant::now);
        (self.restarted.is_none() && since.elapsed() >= STUCK_FOR).then_some(why)
    }
}

/// Restarts `unit` on `host` without waiting for it to start (the run watches it come back).
pub async fn restart(ctx: &Ctx, host: &str, unit: &str) -> Result<(), String> {
    let cmd = format!("systemctl restart --no-block {}", quote(unit));
    super::ledger::run_remote(&ctx.pool, &ctx.fleet, host, &cmd).await
}

/// A command's stdout on a host, or None (a check that could not run says nothing).
async fn output(ctx: &Ctx, host: &str, cmd: String) -> Option<String> {
    let h = ctx.fleet.host(host)?;
    let limit = std::time::Duration::from_secs(5);
    ctx.pool
        .probe_stdout(&ctx.pool.target(h), cmd, limit, "the check")
        .await
        .ok()
}

/// The host's PostgreSQL is a standby whose WAL receiver streams.
pub async fn streams(ctx: &Ctx, host: &str) -> bool {
    output(ctx, host, crate::tech::postgres::command())
        .await
        .and_then(|t| crate::tech::postgres::parse(&t).ok())
        .is_some_and(|n| n.standby && n.receiver == "streaming")
}

/// What the old leader's journal since the fault says it took to follow again (the
/// registry's `rejoin_log`).
pub async fn path(ctx: &Ctx, host: &str, since_s: u64, log: RejoinLog) -> Option<String> {
    let cmd = format!(
        "journalctl -u {} -o cat --since -{since_s}s --no-pager | grep -E {} | tail -20",
        quote(log.unit),
        quote(log.grep)
    );
    Some((log.read)(&output(ctx, host, cmd).await?, host))
}
