//! Every run is recorded in `$XDG_STATE_HOME/kbz/runs/ID/`: `plan.json`, one log per host
//! per module and phase (`NN-name/phase/HOST.log`, secrets redacted), and `summary.json` with
//! timings and the outcome. `kbz runs` lists them; `kbz runs show ID` prints one.

use super::catalogue::Phase;
use super::plan::Plan;
use crate::ssh::Exit;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostResult {
    pub host: String,
    #[serde(with = "exit_text")]
    pub exit: Exit,
    #[serde(with = "secs")]
    pub duration: Duration,
    /// The last `::step` the script announced.
    pub step: Option<String>,
    /// The log's last lines (for a failed host's summary).
    pub tail: Vec<String>,
    /// `::endpoint NAME ADDRESS` lines: services this module made reachable.
    #[serde(default)]
    pub endpoints: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseResult {
    pub module: u32,
    pub name: String,
    pub phase: String,
    #[serde(with = "secs")]
    pub duration: Duration,
    pub hosts: Vec<HostResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub id: String,
    pub command: String,
    pub env: String,
    pub started: String,
    #[serde(with = "secs")]
    pub duration: Duration,
    /// `ok`, `failed`, `cancelled`, or `running` while it runs (or if kbz died).
    pub outcome: String,
    pub phases: Vec<PhaseResult>,
    /// "module 4 redis, install" when cancelled.
    pub cancelled_in: Option<String>,
}

impl Summary {
    /// (host, module, phase) of every host that failed.
    pub fn failures(&self) -> Vec<(&PhaseResult, &HostResult)> {
        self.phases
            .iter()
            .flat_map(|p| p.hosts.iter().map(move |h| (p, h)))
            .filter(|(_, h)| !h.exit.success())
            .collect()
    }
}

pub struct Record {
    pub dir: PathBuf,
    pub summary: Summary,
    start: Instant,
}

impl Record {
    pub fn create(state: &Path, plan: &Plan) -> Result<Record, String> {
        let now = crate::engine::logs::utc_now();
        let stamp: String = now
            .get(..19)
            .unwrap_or(&now)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let runs = state.join("runs");
        // Two runs in the same second get -2, -3...
        let mut id = format!("{stamp}-{}", plan.command);
        let mut n = 1;
        while runs.join(&id).exists() {
            n += 1;
            id = format!("{stamp}-{}-{n}", plan.command);
        }
        let dir = runs.join(&id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let plan_json = serde_json::to_string_pretty(plan).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("plan.json"), plan_json)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let record = Record {
            dir,
            summary: Summary {
                id,
                command: plan.command.clone(),
                env: plan.env.clone(),
                started: now,
                duration: Duration::ZERO,
                outcome: "running".into(),
                phases: Vec::new(),
                cancelled_in: None,
            },
            start: Instant::now(),
        };
        record.save();
        Ok(record)
    }

    /// The file a host's output goes to (none if it cannot be created: the run goes on).
    pub fn host_log(
        &self,
        module: u32,
        name: &str,
        phase: Phase,
        host: &str,
    ) -> Option<std::fs::File> {
        let dir = self
            .dir
            .join(format!("{module:02}-{name}"))
            .join(phase.name());
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::File::create(dir.join(format!("{host}.log"))).ok()
    }

    pub fn phase_done(&mut self, result: PhaseResult) {
        let found: Vec<(String, String)> = result
            .hosts
            .iter()
            .flat_map(|h| h.endpoints.iter().cloned())
            .collect();
        if !found.is_empty()
            && let Some(state) = self.dir.parent().and_then(Path::parent)
        {
            let _ = save_endpoints(state, &self.summary.env, &found);
        }
        self.summary.phases.push(result);
        self.save();
    }

    pub fn cancelled(&mut self, module: u32, phase: Phase) {
        self.summary.cancelled_in = Some(format!("module {module}, {}", phase.name()));
    }

    pub fn finish(&mut self) -> &Summary {
        self.summary.duration = self.start.elapsed();
        self.summary.outcome = if self.summary.cancelled_in.is_some() {
            "cancelled"
        } else if self.summary.failures().is_empty() {
            "ok"
        } else {
            "failed"
        }
        .into();
        self.save();
        &self.summary
    }

    fn save(&self) {
        if let Ok(text) = serde_json::to_string_pretty(&self.summary) {
            let _ = std::fs::write(self.dir.join("summary.json"), text);
        }
    }
}

/// `$XDG_STATE_HOME/kbz/endpoints/ENV.json`: service name -> address:port, as the modules
/// that made them reported (the endpoint checks and failover workloads read it).
fn endpoints_file(state: &Path, env: &str) -> PathBuf {
    state.join("endpoints").join(format!("{env}.json"))
}

pub fn endpoints(state: &Path, env: &str) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(endpoints_file(state, env))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn save_endpoints(state: &Path, env: &str, found: &[(String, String)]) -> Result<(), String> {
    let mut all = endpoints(state, env);
    for (name, address) in found {
        all.insert(name.clone(), address.clone());
    }
    let file = endpoints_file(state, env);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))
}

/// Every recorded run, oldest first.
pub fn list(state: &Path) -> Vec<Summary> {
    let mut out: Vec<Summary> = std::fs::read_dir(state.join("runs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("summary.json")).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    out.sort_by(|a: &Summary, b| a.id.cmp(&b.id));
    out
}

pub fn load(state: &Path, id: &str) -> Result<(PathBuf, Summary), String> {
    let dir = state.join("runs").join(id);
    let text = std::fs::read_to_string(dir.join("summary.json"))
        .map_err(|_| format!("no run {id:?} (see `kbz runs`)"))?;
    let s = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok((dir, s))
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64(v.max(0.0)))
    }
}

/// Exits as text (`0`, `1`, `signal KILL`, `cancelled`, `lost: why`), readable in the JSON.
mod exit_text {
    use crate::ssh::Exit;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(e: &Exit, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&match e {
            Exit::Code(c) => c.to_string(),
            Exit::Signal(sig) => format!("signal {sig}"),
            Exit::Cancelled => "cancelled".into(),
            Exit::Lost(why) => format!("lost: {why}"),
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Exit, D::Error> {
        let t = String::deserialize(d)?;
        Ok(if let Ok(c) = t.parse() {
            Exit::Code(c)
        } else if let Some(s) = t.strip_prefix("signal ") {
            Exit::Signal(s.into())
        } else if t == "cancelled" {
            Exit::Cancelled
        } else {
            Exit::Lost(t.strip_prefix("lost: ").unwrap_or(&t).into())
        })
    }
}
