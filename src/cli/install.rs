//! `kbz install`, `kbz cleanup`, `kbz modules`, `kbz runs`: the module runner from a shell,
//! with the plan shown first, per-host progress, a summary, and a record of every run.

use super::remote::{self, Painter};
use super::{Global, RunsCommand};
use crate::modules::plan::preamble;
use crate::modules::record::{self, Record, Summary};
use crate::modules::secrets::Secrets;
use crate::modules::{Catalogue, Plan, RunEvent, Runner, Selection};
use crate::paths::Paths;
use crate::ssh::{Exit, Stream};
use color_eyre::eyre::{Result, eyre};
use std::process::ExitCode;

pub struct How {
    pub install: bool,
    pub skip_cleanup: bool,
    pub dry_run: bool,
    pub yes: bool,
}

fn load_catalogue(paths: &Paths) -> Result<Catalogue> {
    Catalogue::for_config(&paths.config).map_err(|e| eyre!(e))
}

pub fn run(global: &Global, selection: Selection, how: How) -> Result<ExitCode> {
    if global.readonly && !how.dry_run {
        return Err(eyre!(
            "refused: kbz runs --readonly (use --dry-run to see the plan)"
        ));
    }
    let paths = Paths::from_env().map_err(|e| eyre!(e))?;
    let (fleet, pool) = remote::fleet_and_pool(global)?;
    let catalogue = load_catalogue(&paths)?;
    let vars = crate::inventory::vars_for_inventory(&fleet.source).map_err(|e| eyre!(e))?;
    let plan = crate::modules::plan(
        &catalogue,
        &fleet,
        &vars,
        selection,
        how.install,
        how.skip_cleanup,
    )
    .map_err(|e| eyre!(e))?;
    print_plan(&plan);
    let mut secrets = Secrets::load(&paths.state, &fleet.env).map_err(|e| eyre!(e))?;
    if how.dry_run {
        let redactor = secrets.redactor();
        for pm in &plan.modules {
            let Some(m) = catalogue.get(pm.number) else {
                continue;
            };
            for phase in &pm.phases {
                outln!("\n# module {} {}, {}", pm.number, pm.name, phase.name());
                for h in pm.hosts.iter().filter_map(|h| fleet.host(h)) {
                    let user = &h.user;
                    let via = if user == "root" { "" } else { "sudo -n " };
                    outln!(
                        "## {} ({user}@{}): {via}bash -s, this script on stdin:",
                        h.hostname,
                        h.ip_private
                    );
                    let env = preamble(&fleet, &plan.vars, m, *phase, h, &secrets.values);
                    out!("{}", redactor.redact(&env));
                    let body = m
                        .script(*phase)
                        .or_else(|| m.external(*phase))
                        .unwrap_or("");
                    outln!("{}", body.trim_end());
                }
            }
        }
        outln!("\ndry run: nothing was changed");
        return Ok(ExitCode::SUCCESS);
    }
    if !how.yes && !remote::confirmed(&plan.env)? {
        outln!("not started");
        return Ok(ExitCode::from(1));
    }
    secrets
        .ensure(&plan.secret_names(&catalogue))
        .map_err(|e| eyre!(e))?;
    let mut record = Record::create(&paths.state, &plan).map_err(|e| eyre!(e))?;
    outln!(
        "run {} (logs in {})",
        record.summary.id,
        record.dir.display()
    );
    let painter = Painter::for_stdout();
    let width = plan
        .modules
        .iter()
        .flat_map(|m| m.hosts.iter().map(String::len))
        .max()
        .unwrap_or(8);
    let rt = remote::runtime()?;
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let runner = Runner {
            fleet: &fleet,
            catalogue: &catalogue,
            pool: &pool,
            secrets: &secrets.values,
            redactor: secrets.redactor(),
            events: tx,
        };
        let printer = async {
            while let Some(ev) = rx.recv().await {
                print_event(&painter, width, ev);
            }
        };
        let cancel = async {
            let _ = tokio::signal::ctrl_c().await;
            outln!("\nCtrl-C: stopping the remote commands (logs are kept)");
        };
        let work = async {
            runner.run(&plan, &mut record, cancel).await;
            drop(runner);
        };
        tokio::join!(work, printer);
    });
    let summary = record.finish().clone();
    print_summary(&painter, &summary, &record.dir);
    Ok(match summary.outcome.as_str() {
        "ok" => ExitCode::SUCCESS,
        "cancelled" => ExitCode::from(130),
        _ => ExitCode::from(1),
    })
}

fn print_plan(plan: &Plan) {
    outln!("{} on ENV {}:", plan.command, plan.env);
    for pm in &plan.modules {
        let phases: Vec<&str> = pm.phases.iter().map(|p| p.name()).collect();
        outln!(
            "  {:>2} {:<8} {}: {} on {} host(s): {}{}",
            pm.number,
            pm.name,
            pm.title,
            phases.join(" → "),
            pm.hosts.len(),
            pm.hosts.join(", "),
            if pm.external {
                " (external command)"
            } else {
                ""
            }
        );
        if pm.phases.contains(&crate::modules::Phase::Cleanup) && !pm.wipes.is_empty() {
            outln!("       cleanup wipes: {}", pm.wipes);
        }
    }
}

fn print_event(p: &Painter, width: usize, ev: RunEvent) {
    match ev {
        RunEvent::Phase {
            module,
            name,
            phase,
            hosts,
        } => outln!(
            "── module {module} {name}: {} on {}",
            phase.name(),
            hosts.join(", ")
        ),
        RunEvent::Step { host, step } => outln!("{} ▶ {step}", p.host(&host, width)),
        RunEvent::Line { host, stream, text } => {
            let text = if stream == Stream::Stderr {
                p.bad(&text)
            } else {
                text
            };
            outln!("{} │ {text}", p.host(&host, width));
        }
        RunEvent::HostDone {
            host,
            exit,
            duration,
        } => {
            let verdict = match &exit {
                Exit::Code(0) => "ok".to_string(),
                other => p.bad(&format!("FAILED ({})", describe(other))),
            };
            outln!(
                "{} ■ {verdict} in {:.1} s",
                p.host(&host, width),
                duration.as_secs_f64()
            );
        }
    }
}

fn describe(exit: &Exit) -> String {
    match exit {
        Exit::Code(c) => format!("exit {c}"),
        Exit::Signal(s) => format!("signal {s}"),
        Exit::Cancelled => "cancelled".into(),
        Exit::Lost(why) => format!("lost: {why}"),
    }
}

fn print_summary(p: &Painter, s: &Summary, dir: &std::path::Path) {
    outln!(
        "\n{} {}: {} in {:.1} s ({} phase(s))",
        s.command,
        s.id,
        if s.outcome == "ok" {
            s.outcome.clone()
        } else {
            p.bad(&s.outcome.to_uppercase())
        },
        s.duration.as_secs_f64(),
        s.phases.len()
    );
    if let Some(c) = &s.cancelled_in {
        outln!("cancelled in {c}; remote commands were stopped");
    }
    let failures = s.failures();
    for (phase, host) in &failures {
        outln!(
            "{} failed in module {} {}, {}{} ({}); its last lines:",
            host.host,
            phase.module,
            phase.name,
            phase.phase,
            host.step
                .as_ref()
                .map(|st| format!(", step \"{st}\""))
                .unwrap_or_default(),
            describe(&host.exit)
        );
        for l in &host.tail {
            outln!("    {l}");
        }
    }
    if let Some((phase, _)) = failures.first()
        && s.command == "install"
    {
        outln!("resume with: kbz install --from {}", phase.module);
    }
    outln!("logs: {}", dir.display());
}

pub fn catalogue(_global: &Global) -> Result<ExitCode> {
    let paths = Paths::from_env().map_err(|e| eyre!(e))?;
    let catalogue = load_catalogue(&paths)?;
    let runs = record::list(&paths.state);
    for m in &catalogue.modules {
        let last = runs
            .iter()
            .rev()
            .find(|r| r.phases.iter().any(|p| p.module == m.number()))
            .map(|r| format!("last: {} {} ({})", r.command, r.outcome, r.id))
            .unwrap_or_else(|| "never run".into());
        outln!(
            "{:>2} {:<8} {}  [{}]  {}",
            m.number(),
            m.manifest.name,
            m.manifest.title,
            m.origin,
            last
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn runs(cmd: Option<RunsCommand>) -> Result<ExitCode> {
    let paths = Paths::from_env().map_err(|e| eyre!(e))?;
    match cmd {
        None => {
            let all = record::list(&paths.state);
            if all.is_empty() {
                outln!("no runs yet (`kbz install` starts one)");
            }
            for r in all {
                let modules: Vec<String> = r
                    .phases
                    .iter()
                    .map(|p| p.module.to_string())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                outln!(
                    "{}  {:<8} {:<9} {:>7.1} s  ENV {}  modules {}",
                    r.id,
                    r.command,
                    r.outcome,
                    r.duration.as_secs_f64(),
                    r.env,
                    modules.join(",")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(RunsCommand::Show { id }) => {
            let (dir, s) = record::load(&paths.state, &id).map_err(|e| eyre!(e))?;
            for phase in &s.phases {
                outln!(
                    "module {} {}, {}: {:.1} s",
                    phase.module,
                    phase.name,
                    phase.phase,
                    phase.duration.as_secs_f64()
                );
                for h in &phase.hosts {
                    outln!(
                        "  {:<14} {:<10} {:>6.1} s  {}",
                        h.host,
                        describe(&h.exit),
                        h.duration.as_secs_f64(),
                        h.step.as_deref().unwrap_or("")
                    );
                }
            }
            print_summary(&Painter::for_stdout(), &s, &dir);
            Ok(ExitCode::SUCCESS)
        }
    }
}
