//! `kbz status [CLUSTER] [--json] [--watch]` and `kbz doctor [CLUSTER] [--json]`: the same
//! model the console shows, from the services themselves.

use super::Global;
use super::remote::{self, Painter};
use crate::engine::cross::cross_check;
use crate::engine::probe::probe;
use crate::inventory::{Fleet, FleetConfig};
use crate::probe::host::HostBasics;
use crate::probe::{ClusterStatus, Severity};
use crate::ssh::Pool;
use color_eyre::eyre::{Result, eyre};
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::process::ExitCode;

async fn statuses(
    pool: &Pool,
    fleet: &Fleet,
    only: Option<&str>,
    config: &FleetConfig,
) -> Result<Vec<Result<ClusterStatus, String>>> {
    if let Some(o) = only
        && !fleet
            .clusters
            .iter()
            .any(|c| c.name == o && crate::tech::of(c.technology).watched())
    {
        let names: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
        return Err(eyre!(
            "no probed cluster {o:?} (clusters: {}; probes exist for {})",
            names.join(", "),
            crate::tech::labels(|t| t.watched())
        ));
    }
    // Every probed cluster, even when one is asked for: the load balancers' cross-checks need
    // the leaders of the others.
    let clusters: Vec<_> = fleet
        .clusters
        .iter()
        .filter(|c| crate::tech::of(c.technology).watched())
        .collect();
    let all = join_all(
        clusters
            .iter()
            .map(|c| probe(pool, fleet, c, config, false)),
    )
    .await;
    // Cross-checks need every cluster, even when one was asked for.
    let mut ok: Vec<ClusterStatus> = all
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    cross_check(&mut ok);
    Ok(all
        .into_iter()
        .zip(&clusters)
        .filter(|(_, c)| only.is_none_or(|o| o == c.name))
        .map(|(r, _)| {
            r.map(|s| {
                ok.iter()
                    .find(|x| x.cluster == s.cluster)
                    .cloned()
                    .unwrap_or(s)
            })
        })
        .collect())
}

/// Every host's basics (or only those of `only`'s cluster), all at once.
async fn basics(
    pool: &Pool,
    fleet: &Fleet,
    only: Option<&str>,
) -> Vec<(String, Result<HostBasics, String>)> {
    let hosts: Vec<&crate::inventory::Host> = fleet
        .hosts
        .iter()
        .filter(|h| {
            only.is_none_or(|o| {
                fleet
                    .clusters
                    .iter()
                    .any(|c| c.name == o && c.hosts.contains(&h.hostname))
            })
        })
        .collect();
    let probes = hosts.iter().map(|h| async {
        let target = pool.target(h);
        (
            h.hostname.clone(),
            crate::probe::host::probe(pool, &target).await,
        )
    });
    join_all(probes).await
}

/// `kbz status --hosts`: one line per host.
pub fn hosts(global: &Global, cluster: Option<&str>, json: bool) -> Result<ExitCode> {
    let (fleet, pool) = remote::fleet_and_pool(global)?;
    let all = remote::runtime()?.block_on(basics(&pool, &fleet, cluster));
    if json {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|(h, r)| match r {
                Ok(b) => serde_json::json!({ "host": h, "basics": b, "warnings": b.warnings(h) }),
                Err(e) => serde_json::json!({ "host": h, "error": e }),
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let p = Painter::for_stdout();
    let width = all.iter().map(|(h, _)| h.len()).max().unwrap_or(8);
    for (h, r) in &all {
        match r {
            Ok(b) => {
                let disks: Vec<String> = b
                    .disks
                    .iter()
                    .map(|(m, pct)| format!("{m} {pct}%"))
                    .collect();
                outln!(
                    "{h:width$}  load {:5.2}/{}  mem {:3}%  disk {}  clock {:+.0} ms (±{:.0})  failed units: {}",
                    b.load1,
                    b.cpus,
                    b.mem_used_pct,
                    disks.join(", "),
                    b.clock_offset_ms,
                    b.clock_error_ms,
                    if b.failed_units.is_empty() {
                        "none".to_string()
                    } else {
                        p.bad(&b.failed_units.join(", "))
                    }
                );
            }
            Err(e) => outln!("{h:width$}  {}", p.bad(e)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print(p: &Painter, results: &[Result<ClusterStatus, String>], warnings_only: bool) {
    for r in results {
        match r {
            Ok(s) => {
                outln!("{} ({}): {}", s.cluster, s.technology, s.summary());
                if !warnings_only {
                    let width = s.members.iter().map(|m| m.host.len()).max().unwrap_or(8);
                    for m in &s.members {
                        let lag = m.lag.map(|l| format!("  lag {l}")).unwrap_or_default();
                        let state = if m.up {
                            m.state.clone()
                        } else {
                            p.bad(&m.state)
                        };
                        outln!("  {:width$}  {:<17} {state}{lag}", m.host, m.role);
                    }
                    for (backend, servers) in &s.routes {
                        outln!("  {backend} -> {}", servers.join(", "));
                    }
                    for g in &s.groups {
                        outln!("  {}", g.summary(s.epoch_name));
                    }
                }
                for w in &s.warnings {
                    let tag = match w.severity {
                        Severity::Critical => p.bad("CRITICAL"),
                        Severity::Warning => "warning".to_string(),
                    };
                    outln!("  {tag}: {}: {}. Fix: {}.", w.what, w.why, w.fix);
                }
            }
            Err(e) => outln!("{}", p.bad(&format!("probe failed: {e}"))),
        }
    }
}

pub fn status(global: &Global, cluster: Option<&str>, json: bool, watch: bool) -> Result<ExitCode> {
    let (fleet, pool) = remote::fleet_and_pool(global)?;
    let config = crate::inventory::fleet_config(&fleet.source).map_err(|e| eyre!(e))?;
    let p = Painter::for_stdout();
    let rt = if watch {
        remote::watching_runtime()?
    } else {
        remote::runtime()?
    };
    rt.block_on(async {
        let results = statuses(&pool, &fleet, cluster, &config).await?;
        if json && !watch {
            let v: Vec<serde_json::Value> = results
                .iter()
                .map(|r| match r {
                    Ok(s) => serde_json::to_value(s).unwrap_or_default(),
                    Err(e) => serde_json::json!({ "error": e }),
                })
                .collect();
            outln!("{}", serde_json::to_string(&v).unwrap_or_default());
            return Ok(ExitCode::SUCCESS);
        }
        if !json {
            print(&p, &results, false);
        }
        if !watch {
            return Ok(ExitCode::SUCCESS);
        }
        watch_changes(&pool, fleet, config, cluster, json).await
    })
}

/// `--watch`: the console's prober (periodic, and at once when a cluster announces a change);
/// one line per change of a cluster's summary or warnings, stamped with the time it was seen.
async fn watch_changes(
    pool: &Pool,
    fleet: Fleet,
    config: FleetConfig,
    only: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks = crate::engine::prober::spawn(
        pool,
        std::sync::Arc::new(fleet),
        config,
        crate::engine::prober::STEADY,
        tx,
    );
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(ev) = ev else {
            break;
        };
        if only.is_some_and(|o| o != ev.cluster) {
            continue;
        }
        let stamp = crate::engine::logs::utc_now();
        let line = match &ev.status {
            Ok(s) => {
                let w: Vec<&str> = s.warnings.iter().map(|w| w.what.as_str()).collect();
                format!("{} · {}", s.summary(), w.join("; "))
            }
            Err(e) => format!("probe failed: {e}"),
        };
        if last.get(&ev.cluster) == Some(&line) {
            continue;
        }
        last.insert(ev.cluster.clone(), line.clone());
        if json {
            let v = match &ev.status {
                Ok(s) => {
                    serde_json::json!({ "at": stamp, "cluster": ev.cluster, "pushed": ev.pushed, "status": s })
                }
                Err(e) => serde_json::json!({ "at": stamp, "cluster": ev.cluster, "error": e }),
            };
            outln!("{}", serde_json::to_string(&v).unwrap_or_default());
        } else {
            outln!(
                "{} {}: {line}",
                stamp.get(11..23).unwrap_or(&stamp),
                ev.cluster
            );
        }
    }
    for t in tasks {
        t.abort();
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 1 when some cluster would not fail over (a critical warning), or could not be probed.
pub fn doctor(global: &Global, cluster: Option<&str>, json: bool) -> Result<ExitCode> {
    let (fleet, pool) = remote::fleet_and_pool(global)?;
    let config = crate::inventory::fleet_config(&fleet.source).map_err(|e| eyre!(e))?;
    let (results, hosts) = remote::runtime()?.block_on(async {
        tokio::join!(
            statuses(&pool, &fleet, cluster, &config),
            basics(&pool, &fleet, cluster)
        )
    });
    let results = results?;
    // A host that cannot be probed is already a connection problem the clusters show.
    let host_warnings: Vec<crate::probe::Warning> = hosts
        .iter()
        .filter_map(|(h, r)| r.as_ref().ok().map(|b| b.warnings(h)))
        .flatten()
        .collect();
    let bad = results.iter().any(|r| {
        r.as_ref()
            .map_or(true, |s| s.worst() == Some(Severity::Critical))
    }) || host_warnings
        .iter()
        .any(|w| w.severity == Severity::Critical);
    if json {
        let v: Vec<serde_json::Value> = results
            .iter()
            .map(|r| match r {
                Ok(s) => serde_json::json!({
                    "cluster": s.cluster,
                    "summary": s.summary(),
                    "fails_over": s.worst() != Some(Severity::Critical),
                    "warnings": s.warnings,
                }),
                Err(e) => serde_json::json!({ "error": e, "fails_over": false }),
            })
            .collect();
        let v = serde_json::json!({ "clusters": v, "hosts": host_warnings });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let p = Painter::for_stdout();
        print(&p, &results, true);
        if !host_warnings.is_empty() {
            outln!("hosts:");
        }
        for w in &host_warnings {
            let tag = match w.severity {
                Severity::Critical => p.bad("CRITICAL"),
                Severity::Warning => "warning".to_string(),
            };
            outln!("  {tag}: {}: {}. Fix: {}.", w.what, w.why, w.fix);
        }
        outln!(
            "{}",
            if bad {
                "some loss would not fail over (see CRITICAL above)"
            } else {
                "every cluster probed would fail over"
            }
        );
    }
    Ok(if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
