//! How an old leader comes back: whether it really follows (PostgreSQL: its WAL receiver
//! streams; Patroni 3.0 calls a replica "running" even while its timeline has forked off and
//! it waits for pg_rewind), and what it took (pg_rewind, a full clone, or neither).

use super::run::Ctx;
use crate::ssh::quote::quote;
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

/// What Patroni on the old leader did to follow again, from its journal since the fault.
pub async fn path(ctx: &Ctx, host: &str, since_s: u64) -> Option<String> {
    let cmd = format!(
        "journalctl -u patroni -o cat --since -{since_s}s --no-pager | \
         grep -E 'pg_rewind exit code|running pg_rewind|trying to bootstrap|basebackup|replica has been created' | tail -5"
    );
    Some(rejoin_from_log(&output(ctx, host, cmd).await?))
}

/// pg_rewind (and its exit code), a full clone, or neither, from Patroni's log lines.
pub fn rejoin_from_log(log: &str) -> String {
    if let Some(code) = log
        .lines()
        .find_map(|l| l.split("pg_rewind exit code=").nth(1))
    {
        format!("pg_rewind (exit code {})", code.trim())
    } else if log.contains("basebackup")
        || log.contains("trying to bootstrap")
        || log.contains("replica has been created")
    {
        "a full resync (basebackup)".into()
    } else {
        "following the new timeline (no rewind needed)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::rejoin_from_log;

    #[test]
    fn how_the_old_leader_rejoined() {
        // Lines as Patroni 3.0 logged them in the lab after a kill of the leader.
        let rewound = "2026-11-28 20:20:00,537 INFO: running pg_rewind from db-slave-01\n\
                       2026-11-28 20:20:01,355 INFO: pg_rewind exit code=0\n";
        assert_eq!(rejoin_from_log(rewound), "pg_rewind (exit code 0)");
        assert_eq!(
            rejoin_from_log("INFO: trying to bootstrap from leader 'db-slave-01'\n"),
            "a full resync (basebackup)"
        );
        assert_eq!(
            rejoin_from_log(""),
            "following the new timeline (no rewind needed)"
        );
    }
}
