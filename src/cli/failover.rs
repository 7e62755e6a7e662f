//! `kbz failover CLUSTER`: one or more measured failover tests, reports written to the state
//! dir (or `--report FILE`), faults healed no matter what: on success, failure, Ctrl-C, and
//! at the next start after a crash (the ledger).

use super::Global;
use super::remote::{self, Painter};
use crate::failover::fault::FaultKind;
use crate::failover::ledger::heal_pending;
use crate::failover::run::{Ctx, Progress, RunReport, Spec, run};
use crate::failover::save;
use crate::failover::workload::Outcome;
use crate::paths::Paths;
use color_eyre::eyre::{Result, eyre};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// A line for the person watching: stdout, or stderr under `--json` (stdout then holds the
/// JSON document alone).
macro_rules! human {
    ($json:expr, $($t:tt)*) => {
        if $json { eprintln!($($t)*) } else { outln!($($t)*) }
    };
}

#[derive(Debug, clap::Args)]
pub struct Args {
    pub cluster: String,
    /// `leader` (the current one) or a host of the cluster.
    #[arg(long, value_name = "leader|HOST")]
    pub target: Option<String>,
    #[arg(long, value_enum, default_value = "kill")]
    pub fault: FaultKind,
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub runs: usize,
    /// The longest the fault stays in (it is healed earlier once a new leader settled).
    #[arg(long, default_value_t = crate::failover::run::DEFAULT_DURATION_S, value_name = "S")]
    pub duration: u64,
    /// Where the Markdown report goes (JSON and SVG beside it); default: the state dir.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub yes: bool,
    /// Run even when the preflight says the cluster will not fail over.
    #[arg(long)]
    pub force: bool,
}

pub fn failover(global: &Global, args: Args) -> Result<ExitCode> {
    if global.readonly {
        return Err(eyre!(
            "refused: kbz runs --readonly, and a failover test injects a fault"
        ));
    }
    let (fleet, pool) = remote::fleet_and_pool(global)?;
    let config = crate::inventory::fleet_config(&fleet.source).map_err(|e| eyre!(e))?;
    let paths = Paths::from_env().map_err(|e| eyre!(e))?;
    if !fleet.clusters.iter().any(|c| c.name == args.cluster) {
        let names: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
        return Err(eyre!(
            "no cluster {:?} (clusters: {})",
            args.cluster,
            names.join(", ")
        ));
    }
    let target = args.target.clone().filter(|t| t != "leader");
    let p = Painter::for_stdout();
    let rt = remote::runtime()?;
    let ctx = Ctx {
        pool,
        fleet: Arc::new(fleet),
        config,
        paths: paths.clone(),
        lab: global.lab,
    };
    for line in rt
        .block_on(heal_pending(&ctx.pool, &ctx.fleet, &paths))
        .map_err(|e| eyre!(e))?
    {
        human!(args.json, "{line}");
    }
    human!(
        args.json,
        "failover test on {} (ENV {}): {} the {}, {} run(s), the fault held at most {} s",
        args.cluster,
        ctx.fleet.env,
        args.fault.name(),
        target
            .as_deref()
            .map_or("current leader".to_string(), |t| format!("host {t}")),
        args.runs,
        args.duration
    );
    if !args.yes && !remote::confirmed(&ctx.fleet.env)? {
        human!(args.json, "not started");
        return Ok(ExitCode::from(1));
    }
    let spec = Spec {
        cluster: args.cluster.clone(),
        target,
        fault: args.fault,
        duration: Duration::from_secs(args.duration.max(1)),
        force: args.force,
    };
    let series = save::series_id(&args.cluster);
    let reports: Vec<RunReport> = rt.block_on(async {
        let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(None);
        // Ctrl-C, and what ends a process without a person at the keyboard (`timeout`, a
        // closed terminal, systemd): the run stops and heals its fault before kbz exits.
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                if tokio::signal::ctrl_c().await.is_ok() {
                    let _ = cancel_tx.send(Some("Ctrl-C"));
                }
                return;
            };
            let why = tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            let _ = cancel_tx.send(Some(why));
        });
        let mut reports = Vec::new();
        for i in 1..=args.runs {
            let id = format!("{series}-{i}");
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let json = args.json;
            let printer = tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    match ev {
                        Progress::Event(e) => {
                            human!(json, "  {:7.2} s  {}", e.at_ms / 1000.0, e.what)
                        }
                        Progress::Op(o) if o.outcome != Outcome::Ok => human!(
                            json,
                            "  {:7.2} s    write {} {:?}: {}",
                            o.end_ms / 1000.0,
                            o.id,
                            o.outcome,
                            o.error.unwrap_or_default()
                        ),
                        _ => {}
                    }
                }
            });
            human!(args.json, "── run {i}/{} ({id})", args.runs);
            let r = run(&ctx, &spec, &id, tx, cancel_rx.clone()).await;
            let _ = printer.await;
            human!(args.json, "  verdict: {}", r.verdict);
            let stop = cancel_rx.borrow().is_some() || !r.completed;
            reports.push(r);
            if stop {
                break;
            }
            if i < args.runs {
                // The old leader has rejoined; let the cluster settle before the next fault.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
        reports
    });
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let md_path = args
        .report
        .clone()
        .unwrap_or_else(|| save::default_report(&paths.state, &series));
    let written = save::write(&reports, &command, &md_path).map_err(|e| eyre!(e))?;
    if args.json {
        outln!("{}", serde_json::to_string(&written.document)?);
    }
    let svgs: Vec<String> = written
        .svgs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    human!(
        args.json,
        "report: {} (and {}, {})",
        written.markdown.display(),
        written.json.display(),
        svgs.join(", ")
    );
    let failed = reports
        .iter()
        .any(|r| !r.completed || r.measures.new_leader.is_none());
    if failed {
        human!(
            args.json,
            "{}",
            p.bad("some run did not fail over, or stopped early (see the verdicts)")
        );
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
