//! One failover run: preflight, workload, fault, heal (always), measures. The fault is in the
//! ledger before it is injected and leaves it only once healed; Ctrl-C (the `cancel` signal)
//! heals and ends the run with what was measured so far.

pub use super::ctx::Ctx;
use super::fault::{self, FaultKind};
use super::ledger::{self, Entry, Ledger};
use super::measure::{Measures, Sample, measure};
use super::rejoin;
use super::workload::{self, Clock, Op};
use crate::engine::endpoints::{endpoints_of, via_host};
use crate::engine::prober::{self, ProbeEvent};
use crate::modules::secrets::Secrets;
use crate::probe::{ClusterStatus, Severity, Warning};
use crate::tech::Rejoin;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Writes before the fault, to see the healthy baseline.
const WARMUP: Duration = Duration::from_secs(3);
/// After the heal, how long the old leader may take to follow again.
const REJOIN: Duration = Duration::from_secs(60);
const WRITE_EVERY: Duration = Duration::from_millis(75);
/// The longest a fault stays in unless asked otherwise (healed earlier once a new leader
/// settled): `kbz failover`'s default, and the console's.
pub const DEFAULT_DURATION_S: u64 = 40;

#[derive(Debug, Clone)]
pub struct Spec {
    pub cluster: String,
    /// A host, or None for the current leader.
    pub target: Option<String>,
    pub fault: FaultKind,
    /// The longest the fault stays in.
    pub duration: Duration,
    pub force: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_ms: f64,
    pub what: String,
}

/// The moments a live view marks on its timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// The target and the leader it had when the run began.
    Target {
        host: String,
        leader: String,
    },
    Injected,
    Healed,
    NewLeader(String),
    Rejoined,
}

/// What a run tells as it goes.
#[derive(Debug, Clone)]
pub enum Progress {
    Event(Event),
    Op(Op),
    Sample(Sample),
    Mark(f64, Mark),
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run: String,
    pub cluster: String,
    pub technology: String,
    pub fault: FaultKind,
    pub target: Option<String>,
    pub started_at: String,
    pub before: Option<ClusterStatus>,
    pub after: Option<ClusterStatus>,
    /// Doctor's critical warnings before the run (the run is refused on them unless forced).
    pub preflight: Vec<Warning>,
    pub forced: bool,
    pub inject_ms: Option<f64>,
    pub heal_ms: Option<f64>,
    pub events: Vec<Event>,
    pub measures: Measures,
    pub read_back_from: Option<String>,
    /// How the old leader caught up (PostgreSQL: pg_rewind, a full clone, or neither).
    pub rejoined_by: Option<String>,
    /// Why the run restarted the old leader's service after the heal (it stayed where only a
    /// restart ends it, as the registry's `stuck` says).
    pub restarted: Option<String>,
    pub verdict: String,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
    #[serde(skip)]
    pub ops: Vec<Op>,
    #[serde(skip)]
    pub samples: Vec<Sample>,
    /// The run ran its course (not refused, not failed before the fault).
    pub completed: bool,
}

fn sample(s: &ClusterStatus, target: &str, at_ms: f64) -> Sample {
    let m = s.members.iter().find(|m| m.host == target);
    Sample {
        at_ms,
        leader: s.leader.clone(),
        epoch: s.epoch,
        target: m.map(|m| (m.role.clone(), m.up)),
        // Patroni 3.0 says "running" of a replica that cannot follow (its timeline forked
        // off before pg_rewind): it follows once it is on the leader's timeline.
        target_follows: m.is_some_and(|m| {
            let caught_up = match m.role.as_str() {
                "replica" | "sync standby" | "standby" => true,
                // A RabbitMQ node: its member of the failover queue has applied what the
                // leader committed (in Raft entries; the two are read a moment apart, so a
                // few writes of the running workload's may separate them).
                "member" => m.lag.is_some_and(|l| l <= 20),
                // A Galera member HAProxy sends writes to again (the first Synced one in
                // inventory order: the old writer, back).
                "writer" => true,
                _ => false,
            };
            m.up && caught_up
                && matches!(m.state.as_str(), "streaming" | "running" | "Synced")
                && m.epoch.is_none_or(|e| Some(e) == s.epoch)
        }),
    }
}

struct Live {
    clock: Clock,
    events: Vec<Event>,
    tx: mpsc::UnboundedSender<Progress>,
}

impl Live {
    fn mark(&self, mark: Mark) {
        let _ = self.tx.send(Progress::Mark(self.clock.ms(), mark));
    }

    fn say(&mut self, what: String) {
        let e = Event {
            at_ms: self.clock.ms(),
            what,
        };
        let _ = self.tx.send(Progress::Event(e.clone()));
        self.events.push(e);
    }
}

/// Runs one test; never returns with the fault in place (unless its heal failed, which the
/// report and the ledger both say).
pub async fn run(
    ctx: &Ctx,
    spec: &Spec,
    run_id: &str,
    progress: mpsc::UnboundedSender<Progress>,
    mut cancel: watch::Receiver<Option<&'static str>>,
) -> RunReport {
    let clock = Clock(Instant::now());
    let mut live = Live {
        clock,
        events: Vec::new(),
        tx: progress,
    };
    let mut report = RunReport {
        run: run_id.to_string(),
        cluster: spec.cluster.clone(),
        technology: String::new(),
        fault: spec.fault,
        target: spec.target.clone(),
        started_at: crate::engine::logs::utc_now(),
        before: None,
        after: None,
        preflight: Vec::new(),
        forced: spec.force,
        inject_ms: None,
        heal_ms: None,
        events: Vec::new(),
        measures: Measures::default(),
        read_back_from: None,
        rejoined_by: None,
        restarted: None,
        verdict: String::new(),
        error: None,
        ops: Vec::new(),
        samples: Vec::new(),
        completed: false,
    };
    if let Err(e) = body(ctx, spec, &mut live, &mut report, &mut cancel).await {
        live.say(format!("stopped: {e}"));
        report.error = Some(e);
    }
    report.events = live.events;
    report.verdict = verdict(&report);
    report
}

async fn body(
    ctx: &Ctx,
    spec: &Spec,
    live: &mut Live,
    report: &mut RunReport,
    cancel: &mut watch::Receiver<Option<&'static str>>,
) -> Result<(), String> {
    let fleet = &ctx.fleet;
    let cluster = fleet
        .clusters
        .iter()
        .find(|c| c.name == spec.cluster)
        .ok_or_else(|| format!("no cluster {:?}", spec.cluster))?;
    report.technology = cluster.technology.id().to_string();
    let before = crate::engine::probe::probe(&ctx.pool, fleet, cluster, &ctx.config, false).await?;
    live.say(format!("before: {}", before.summary()));
    report.preflight = before
        .warnings
        .iter()
        .filter(|w| w.severity == Severity::Critical)
        .cloned()
        .collect();
    let old_leader = before.leader.clone();
    let old_epoch = before
        .epoch
        .filter(|_| !crate::tech::of(cluster.technology).epoch_lags);
    report.before = Some(before);
    if !report.preflight.is_empty() {
        if !spec.force {
            return Err(format!(
                "refused by the preflight: {} (--force runs it anyway, to show exactly that)",
                report
                    .preflight
                    .iter()
                    .map(|w| w.what.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        live.say("preflight says it will not fail over; forced".into());
    }
    let old_leader = old_leader.ok_or("the cluster has no leader to fail over from")?;
    let target = spec.target.clone().unwrap_or_else(|| old_leader.clone());
    if !cluster.hosts.contains(&target) {
        return Err(format!("{target} is not a host of {}", cluster.name));
    }
    report.target = Some(target.clone());
    live.mark(Mark::Target {
        host: target.clone(),
        leader: old_leader.clone(),
    });
    let plan = fault::plan(spec.fault, fleet, cluster, &target, ctx.lab)?;

    // The client path.
    let via = via_host(fleet, None)?;
    let secrets = Secrets::load(&ctx.paths.state, &fleet.env)?;
    let tech = crate::tech::of(cluster.technology);
    let workload = tech.workload.ok_or_else(|| {
        format!(
            "no failover workload for {} yet",
            cluster.technology.label()
        )
    })?;
    let endpoints = endpoints_of(fleet, &ctx.paths.state)?;
    let mut writer = (workload.start)(&crate::tech::workload::Start {
        pool: &ctx.pool,
        fleet,
        via,
        cluster,
        secrets: &secrets.values,
        endpoints: &endpoints,
        run: &report.run,
    })?;
    writer.setup().await?;

    // The state poller: the console's prober, on this cluster alone.
    let mut one = (**fleet).clone();
    one.clusters.retain(|c| c.name == cluster.name);
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<ProbeEvent>();
    let probes = prober::spawn(
        &ctx.pool,
        Arc::new(one),
        ctx.config.clone(),
        Duration::from_millis(500),
        probe_tx,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let (op_tx, mut op_rx) = mpsc::unbounded_channel::<Op>();
    let writing = tokio::spawn(workload::run(
        writer,
        live.clock,
        WRITE_EVERY,
        stop_rx,
        op_tx,
    ));
    live.say(format!(
        "workload started: a write every {} ms through {}",
        WRITE_EVERY.as_millis(),
        workload.through
    ));

    let ledger = Ledger::new(&ctx.paths.state, &fleet.env);
    let entry = Entry {
        id: format!("{}/{}", report.run, plan.kind.name()),
        host: target.clone(),
        cluster: cluster.name.clone(),
        fault: plan.kind.name().into(),
        heal: plan.heal.clone(),
        injected_at: String::new(),
    };
    let started = Instant::now();
    let mut injected: Option<Instant> = None;
    let mut healed: Option<Instant> = None;
    let mut elected: Option<Instant> = None;
    let mut rejoined: Option<Instant> = None;
    let mut last_leader = Some(old_leader.clone());
    let (mut streaming, mut last_check) = (false, None::<Instant>);
    let mut unstick = rejoin::Unstick::default();
    let mut restarted: Option<Instant> = None;
    let mut outcome: Result<(), String> = Ok(());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            Some(op) = op_rx.recv() => {
                let _ = live.tx.send(Progress::Op(op.clone()));
                report.ops.push(op);
            }
            Some(ev) = probe_rx.recv() => {
                if let Ok(s) = &ev.status {
                    let mut smp = sample(s, &target, live.clock.ms());
                    // Patroni calls a replica "running" before pg_rewind: after the heal, the
                    // old leader follows once its own WAL receiver streams (asked at most
                    // once a second).
                    if healed.is_some() && smp.target_follows
                        && tech.rejoin == Rejoin::Streams && !streaming
                    {
                        if last_check.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                            last_check = Some(Instant::now());
                            streaming = rejoin::streams(ctx, &target).await;
                        }
                        smp.target_follows = streaming;
                    }
                    if smp.leader != last_leader {
                        live.say(format!("leader: {} -> {} ({} {})",
                            last_leader.as_deref().unwrap_or("none"),
                            smp.leader.as_deref().unwrap_or("none"),
                            s.epoch_name, s.epoch.map_or("?".into(), |e| e.to_string())));
                        last_leader = smp.leader.clone();
                    }
                    // As the measures count it: a different leader, in a newer epoch where
                    // the epoch is read at once.
                    if injected.is_some() && elected.is_none()
                        && smp.leader.as_ref().is_some_and(|l| *l != old_leader)
                        && old_epoch.is_none_or(|o| smp.epoch.is_some_and(|e| e > o))
                    {
                        elected = Some(Instant::now());
                        live.mark(Mark::NewLeader(smp.leader.clone().unwrap_or_default()));
                    }
                    if healed.is_some() && rejoined.is_none() {
                        // Without a failover the old leader's way back is to lead again.
                        let leads = elected.is_none()
                            && smp.leader.as_deref() == Some(target.as_str())
                            && smp.target.as_ref().is_some_and(|t| t.1);
                        if smp.target_follows || leads {
                            rejoined = Some(Instant::now());
                            live.mark(Mark::Rejoined);
                            live.say(format!("{target} {} again", if leads { "leads" } else { "follows" }));
                        }
                    }
                    if healed.is_some() && rejoined.is_none()
                        && let (Some(stuck), Some(unit)) = (tech.stuck, tech.unit)
                        && let Some(why) = unstick.due(stuck(s, &target))
                    {
                        live.say(format!("{target} is still {why} after the heal, which only a restart ends: restarting {unit} there"));
                        unstick.restarted = Some(why);
                        restarted = Some(Instant::now());
                        if let Err(e) = rejoin::restart(ctx, &target, unit).await {
                            live.say(format!("the restart failed: {e}"));
                        }
                    }
                    let _ = live.tx.send(Progress::Sample(smp.clone()));
                    // Only changes are kept: the measures look for the first of each, and a
                    // 10-run report stays small.
                    if report.samples.last().is_none_or(|l| !l.same_state(&smp)) {
                        report.samples.push(smp);
                    }
                }
            }
            _ = cancel.changed() => {
                let by = cancel.borrow().unwrap_or("its caller went away");
                outcome = Err(format!("cancelled ({by})"));
                break;
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if injected.is_none() && now - started >= WARMUP {
                    let mut e = entry.clone();
                    e.injected_at = crate::engine::logs::utc_now();
                    ledger.add(e)?;
                    live.say(format!("injecting {} on {target}", plan.kind.name()));
                    let done = match &plan.inject {
                        Some(cmd) => ledger::run_remote(&ctx.pool, fleet, &target, cmd).await,
                        None => lab_fault(ctx, &target, crate::lab::Fault::Crash).await,
                    };
                    // Marked injected even when the command failed: it may have half
                    // worked, and the heal below must run.
                    injected = Some(Instant::now());
                    if let Err(e) = done {
                        outcome = Err(format!("the fault could not be injected: {e}"));
                        break;
                    }
                    report.inject_ms = Some(live.clock.ms());
                    live.mark(Mark::Injected);
                    live.say(format!("{} injected on {target}", plan.kind.name()));
                } else if let Some(at) = injected && healed.is_none() {
                    let settled = elected.is_some_and(|e| now - e >= tech.settle);
                    if settled || now - at >= spec.duration {
                        if !settled {
                            live.say(format!("no new leader within {} s", spec.duration.as_secs()));
                        }
                        heal(ctx, &ledger, &entry, live, report).await?;
                        healed = Some(Instant::now());
                    }
                } else if let Some(h) = healed {
                    let done = rejoined.is_some_and(|r| now - r >= Duration::from_secs(2));
                    // A restart gives the member the whole window again.
                    if done || now - restarted.unwrap_or(h) >= REJOIN {
                        if rejoined.is_none() {
                            live.say(format!("{target} did not follow again within {} s", REJOIN.as_secs()));
                        }
                        break;
                    }
                }
            }
        }
    }
    // Heal no matter how the loop ended.
    if injected.is_some() && healed.is_none() {
        heal(ctx, &ledger, &entry, live, report).await?;
    }
    let _ = stop_tx.send(true);
    let mut writer = writing.await.map_err(|e| e.to_string())?;
    while let Ok(op) = op_rx.try_recv() {
        report.ops.push(op);
    }
    for p in probes {
        p.abort();
    }
    report.restarted = unstick.restarted;
    if let Some(log) = tech.rejoin_log
        && rejoined.is_some()
    {
        let since = injected.map_or(120, |i| i.elapsed().as_secs() + 5);
        report.rejoined_by = rejoin::path(ctx, &target, since, log).await;
        if let Some(how) = &report.rejoined_by {
            live.say(format!("{target} rejoined by {how}"));
        }
    }
    // Each member's own rows first (the leader's read back may clean up), then every id back
    // from the leader.
    let members = tokio::time::timeout(Duration::from_secs(15), writer.read_members())
        .await
        .unwrap_or_default();
    for (member, read) in &members {
        if let Err(e) = read {
            live.say(format!("read back on {member} failed: {e}"));
        }
    }
    let found = match tokio::time::timeout(Duration::from_secs(15), writer.read_back()).await {
        Ok(Ok((node, ids))) => {
            report.read_back_from = Some(node);
            Some(ids)
        }
        Ok(Err(e)) => {
            live.say(format!("read back failed: {e}"));
            None
        }
        Err(_) => {
            live.say("read back took over 15 s".into());
            None
        }
    };
    if let Some(inject_ms) = report.inject_ms {
        report.measures = measure(
            &report.ops,
            &report.samples,
            &old_leader,
            old_epoch,
            inject_ms,
            report.heal_ms,
            found.as_deref(),
        );
        report.measures.missing_on = super::measure::missing_on(&report.ops, &members);
        report.measures.read_on = members
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(m, _)| m.clone())
            .collect();
        report.completed = outcome.is_ok();
    }
    report.after = crate::engine::probe::probe(&ctx.pool, fleet, cluster, &ctx.config, false)
        .await
        .ok();
    if let Some(a) = &report.after {
        live.say(format!("after: {}", a.summary()));
    }
    outcome
}

async fn lab_fault(ctx: &Ctx, host: &str, fault: crate::lab::Fault) -> Result<(), String> {
    let (paths, host) = (ctx.paths.clone(), host.to_string());
    tokio::task::spawn_blocking(move || crate::lab::fault(&paths, &host, fault, &|_| {}))
        .await
        .map_err(|e| e.to_string())?
}

async fn heal(
    ctx: &Ctx,
    ledger: &Ledger,
    entry: &Entry,
    live: &mut Live,
    report: &mut RunReport,
) -> Result<(), String> {
    live.say(format!("healing {} on {}", entry.fault, entry.host));
    match ledger::heal(&ctx.pool, &ctx.fleet, &ctx.paths, entry).await {
        Ok(()) => {
            ledger.remove(&entry.id)?;
            report.heal_ms = Some(live.clock.ms());
            live.mark(Mark::Healed);
            live.say(format!("{} healed on {}", entry.fault, entry.host));
            Ok(())
        }
        Err(e) => Err(format!(
            "the heal failed ({e}); the fault stays in {} and the next kbz failover heals it",
            ledger.path().display()
        )),
    }
}

fn secs(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

/// The run in one line.
pub fn verdict(r: &RunReport) -> String {
    let m = &r.measures;
    if r.inject_ms.is_none() {
        return format!("not run: {}", r.error.clone().unwrap_or_default());
    }
    let target = r.target.clone().unwrap_or_default();
    let mut parts = Vec::new();
    match (&m.new_leader, m.new_leader_ms) {
        (Some(l), Some(ms)) => {
            parts.push(format!("failed over from {target} to {l} in {}", secs(ms)))
        }
        _ => parts.push(if r.preflight.is_empty() {
            "NO FAILOVER".to_string()
        } else {
            format!(
                "NO FAILOVER, as the preflight said: {}",
                r.preflight
                    .iter()
                    .map(|w| w.what.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }),
    }
    parts.push(format!("writes stopped for {}", secs(m.write_gap_ms)));
    parts.push(if m.lost.is_empty() {
        "no acknowledged write lost".into()
    } else {
        format!("{} ACKNOWLEDGED WRITES LOST", m.lost.len())
    });
    for (member, lacks) in &m.missing_on {
        parts.push(format!(
            "{member} LACKS {} acknowledged writes",
            lacks.len()
        ));
    }
    if !m.split_brain.is_empty() {
        parts.push(format!(
            "SPLIT BRAIN: {} writes acknowledged by {target} after the new leader was elected",
            m.split_brain.len()
        ));
    }
    if let Some(why) = &r.restarted {
        parts.push(format!(
            "{target} stayed {why} after the heal: kbz restarted it{}",
            if m.reintegration_ms.is_some() {
                ", then it followed again"
            } else {
                ""
            }
        ));
    }
    // Only for a run that waited for it: a cancelled one stopped waiting.
    if r.heal_ms.is_some() && m.reintegration_ms.is_none() && r.error.is_none() {
        // What the cluster says of it after, when it says something (RabbitMQ leaves a node
        // frozen past net_ticktime a partition of its own under pause_minority).
        let why = r.after.as_ref().and_then(|a| {
            a.warnings
                .iter()
                .find(|w| w.severity == Severity::Critical && w.what.contains(&target))
                .map(|w| format!(": {}", w.what))
        });
        parts.push(format!(
            "{target} NOT FOLLOWING AGAIN after the heal{}",
            why.unwrap_or_default()
        ));
    }
    if let Some(e) = &r.error {
        parts.push(format!("stopped early: {e}"));
    }
    parts.join("; ")
}
