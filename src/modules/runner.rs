//! Runs a plan: module after module, phase after phase, each phase on all its hosts at once
//! over the pool. A host that fails stops its module once the phase ends on the others, and no
//! later module starts. Every line goes, redacted, to the host's log in the run's directory
//! and to the caller as an event. Cancelling drops every running command, which stops its
//! remote process group; the logs stay.

use super::catalogue::{Catalogue, Phase};
use super::plan::{Plan, preamble};
use super::record::{HostResult, PhaseResult, Record};
use super::secrets::Redactor;
use crate::inventory::Fleet;
use crate::ssh::{ExecEvent, ExecSpec, Exit, LineBuffer, Payload, Pool, Stream};
use futures_util::future::join_all;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Lines of a failed host's log kept for the summary.
const TAIL: usize = 12;

#[derive(Debug, Clone)]
pub enum RunEvent {
    Phase {
        module: u32,
        name: String,
        phase: Phase,
        hosts: Vec<String>,
    },
    /// A script said `::step NAME`.
    Step { host: String, step: String },
    Line {
        host: String,
        stream: Stream,
        text: String,
    },
    HostDone {
        host: String,
        exit: Exit,
        duration: Duration,
    },
}

pub struct Runner<'a> {
    pub fleet: &'a Fleet,
    pub catalogue: &'a Catalogue,
    pub pool: &'a Pool,
    pub secrets: &'a BTreeMap<String, String>,
    pub redactor: Redactor,
    pub events: UnboundedSender<RunEvent>,
}

impl Runner<'_> {
    /// Runs the plan, recording into `record`, until the end, a failure, or `cancel`.
    pub async fn run(
        &self,
        plan: &Plan,
        record: &mut Record,
        cancel: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(cancel);
        for pm in &plan.modules {
            let Some(module) = self.catalogue.get(pm.number) else {
                continue;
            };
            for &phase in &pm.phases {
                let _ = self.events.send(RunEvent::Phase {
                    module: pm.number,
                    name: pm.name.clone(),
                    phase,
                    hosts: pm.hosts.clone(),
                });
                let start = Instant::now();
                let runs = pm
                    .hosts
                    .iter()
                    .map(|h| self.host(record, &plan.vars, module, phase, h));
                let results = tokio::select! {
                    r = join_all(runs) => Some(r),
                    // Dropping the phase drops its commands: remote processes are stopped.
                    _ = &mut cancel => None,
                };
                let Some(results) = results else {
                    record.cancelled(pm.number, phase);
                    return;
                };
                let failed = results.iter().any(|r| !r.exit.success());
                record.phase_done(PhaseResult {
                    module: pm.number,
                    name: pm.name.clone(),
                    phase: phase.name().into(),
                    duration: start.elapsed(),
                    hosts: results,
                });
                if failed {
                    return;
                }
            }
        }
    }

    async fn host(
        &self,
        record: &Record,
        vars: &BTreeMap<String, String>,
        module: &super::catalogue::Module,
        phase: Phase,
        name: &str,
    ) -> HostResult {
        let start = Instant::now();
        let mut result = HostResult {
            host: name.to_string(),
            exit: Exit::Lost("not started".into()),
            duration: Duration::ZERO,
            step: None,
            tail: Vec::new(),
            endpoints: Vec::new(),
        };
        let Some(host) = self.fleet.host(name) else {
            return result;
        };
        let mut log = record.host_log(module.number(), &module.manifest.name, phase, name);
        let body = module
            .script(phase)
            .or_else(|| module.external(phase))
            .unwrap_or("");
        let spec = ExecSpec {
            payload: Payload::Script {
                body: format!(
                    "{}\n{body}\n",
                    preamble(self.fleet, vars, module, phase, host, self.secrets)
                ),
                args: Vec::new(),
            },
            sudo: host.user != "root",
        };
        let target = self.pool.target(host);
        let mut exec = match self.pool.exec(&target, &spec).await {
            Ok(e) => e,
            Err(state) => {
                result.exit = Exit::Lost(state.explain(name));
                result.tail.push(state.explain(name));
                let _ = self.events.send(RunEvent::HostDone {
                    host: name.to_string(),
                    exit: result.exit.clone(),
                    duration: start.elapsed(),
                });
                return result;
            }
        };
        let mut tail: VecDeque<String> = VecDeque::new();
        let (mut out, mut err) = (LineBuffer::default(), LineBuffer::default());
        while let Some(ev) = exec.next().await {
            let (stream, lines) = match ev {
                ExecEvent::Data(Stream::Stdout, d) => (Stream::Stdout, out.push(&d)),
                ExecEvent::Data(Stream::Stderr, d) => (Stream::Stderr, err.push(&d)),
                ExecEvent::Exit { exit, duration } => {
                    let rest: Vec<(Stream, String)> = out
                        .finish()
                        .map(|l| (Stream::Stdout, l))
                        .into_iter()
                        .chain(err.finish().map(|l| (Stream::Stderr, l)))
                        .collect();
                    for (s, l) in rest {
                        self.line(name, s, &l, &mut log, &mut tail, &mut result);
                    }
                    result.exit = exit;
                    result.duration = duration;
                    break;
                }
            };
            for l in lines {
                self.line(name, stream, &l, &mut log, &mut tail, &mut result);
            }
        }
        if let Some(f) = log.as_mut() {
            let _ = writeln!(
                f,
                "# kbz: {:?} after {:.2} s",
                result.exit,
                result.duration.as_secs_f64()
            );
        }
        result.tail = tail.into();
        let _ = self.events.send(RunEvent::HostDone {
            host: name.to_string(),
            exit: result.exit.clone(),
            duration: result.duration,
        });
        result
    }

    fn line(
        &self,
        host: &str,
        stream: Stream,
        raw: &str,
        log: &mut Option<std::fs::File>,
        tail: &mut VecDeque<String>,
        result: &mut HostResult,
    ) {
        let text = self.redactor.redact(raw);
        if let Some(f) = log.as_mut() {
            let mark = if stream == Stream::Stderr { "! " } else { "" };
            let _ = writeln!(f, "{mark}{text}");
        }
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(text.clone());
        if let Some(e) = text.strip_prefix("::endpoint ") {
            if let Some((name, address)) = e.trim().split_once(' ') {
                result
                    .endpoints
                    .push((name.to_string(), address.trim().to_string()));
            }
            let _ = self.events.send(RunEvent::Line {
                host: host.to_string(),
                stream,
                text: format!("endpoint {}", e.trim()),
            });
        } else if let Some(s) = text.strip_prefix("::step ") {
            result.step = Some(s.trim().to_string());
            let _ = self.events.send(RunEvent::Step {
                host: host.to_string(),
                step: s.trim().to_string(),
            });
        } else {
            let _ = self.events.send(RunEvent::Line {
                host: host.to_string(),
                stream,
                text,
            });
        }
    }
}
