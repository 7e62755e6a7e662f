//! The fault ledger: every fault is written here (and synced) *before* it is injected, and
//! removed only once healed. Whatever a crash, a kill or a lost connection left behind, the
//! next kbz that starts a failover (or the console) heals it, and says so.

use super::fault::Heal;
use crate::inventory::Fleet;
use crate::ssh::{ExecEvent, ExecSpec, Pool};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique per injection: `RUN/N`.
    pub id: String,
    pub host: String,
    pub cluster: String,
    pub fault: String,
    pub heal: Heal,
    /// UTC, as written.
    pub injected_at: String,
}

/// `$XDG_STATE_HOME/kbz/faults/ENV.json`.
pub struct Ledger {
    file: PathBuf,
}

impl Ledger {
    pub fn new(state: &Path, env: &str) -> Ledger {
        Ledger {
            file: state.join("faults").join(format!("{env}.json")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    pub fn entries(&self) -> Result<Vec<Entry>, String> {
        match std::fs::read_to_string(&self.file) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| format!("{}: {e}", self.file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(format!("{}: {e}", self.file.display())),
        }
    }

    fn save(&self, entries: &[Entry]) -> Result<(), String> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = self.file.with_extension("tmp");
        let text = serde_json::to_string_pretty(entries).map_err(|e| e.to_string())?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.file).map_err(|e| format!("{}: {e}", self.file.display()))?;
        // The rename itself must reach the disk before the fault does.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Records a fault about to be injected.
    pub fn add(&self, entry: Entry) -> Result<(), String> {
        let mut all = self.entries()?;
        all.push(entry);
        self.save(&all)
    }

    /// Forgets a healed fault.
    pub fn remove(&self, id: &str) -> Result<(), String> {
        let mut all = self.entries()?;
        all.retain(|e| e.id != id);
        self.save(&all)
    }
}

/// Runs a heal command on a host; its failure, with the output, if any.
pub async fn run_remote(
    pool: &Pool,
    fleet: &Fleet,
    host: &str,
    command: &str,
) -> Result<(), String> {
    let h = fleet
        .host(host)
        .ok_or_else(|| format!("{host} is no longer in the inventory"))?;
    let mut exec = pool
        .exec(&pool.target(h), &ExecSpec::command(command.to_string()))
        .await
        .map_err(|s| s.explain(host))?;
    let mut out = Vec::new();
    let wait = async {
        while let Some(ev) = exec.next().await {
            match ev {
                ExecEvent::Data(_, d) => out.extend_from_slice(&d),
                ExecEvent::Exit { exit, .. } => return Some(exit),
            }
        }
        None
    };
    match tokio::time::timeout(Duration::from_secs(30), wait).await {
        Ok(Some(exit)) if exit.success() => Ok(()),
        Ok(Some(exit)) => Err(format!(
            "{host}: `{command}` ended with {exit:?}: {}",
            String::from_utf8_lossy(&out).trim()
        )),
        Ok(None) => Err(format!("{host}: `{command}`: connection lost")),
        Err(_) => Err(format!("{host}: `{command}` took over 30 s")),
    }
}

/// Heals one entry: remote over SSH, or the lab's own fault (blocking, off the runtime).
pub async fn heal(
    pool: &Pool,
    fleet: &Fleet,
    paths: &crate::paths::Paths,
    entry: &Entry,
) -> Result<(), String> {
    match &entry.heal {
        Heal::Remote { command } => run_remote(pool, fleet, &entry.host, command).await,
        Heal::Lab { fault } => {
            let fault = match fault.as_str() {
                "restart" => crate::lab::Fault::Restart,
                "thaw" => crate::lab::Fault::Thaw,
                "restore" => crate::lab::Fault::Restore,
                other => return Err(format!("unknown lab heal {other:?}")),
            };
            let (paths, host) = (paths.clone(), entry.host.clone());
            tokio::task::spawn_blocking(move || crate::lab::fault(&paths, &host, fault, &|_| {}))
                .await
                .map_err(|e| e.to_string())?
        }
    }
}

/// Heals whatever the ledger still lists; one line per fault, saying what was done.
pub async fn heal_pending(
    pool: &Pool,
    fleet: &Fleet,
    paths: &crate::paths::Paths,
) -> Result<Vec<String>, String> {
    let ledger = Ledger::new(&paths.state, &fleet.env);
    let mut said = Vec::new();
    for e in ledger.entries()? {
        match heal(pool, fleet, paths, &e).await {
            Ok(()) => {
                ledger.remove(&e.id)?;
                said.push(format!(
                    "healed {} on {} ({}), left by an earlier run at {}",
                    e.fault, e.host, e.cluster, e.injected_at
                ));
            }
            Err(err) => said.push(format!(
                "could not heal {} on {} left at {} ({err}); it stays in {}",
                e.fault,
                e.host,
                e.injected_at,
                ledger.path().display()
            )),
        }
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::new(dir.path(), "lab");
        assert!(l.entries().unwrap().is_empty());
        let e = |id: &str| Entry {
            id: id.into(),
            host: "redis-01".into(),
            cluster: "redis".into(),
            fault: "kill".into(),
            heal: Heal::Remote {
                command: "systemctl start redis-server".into(),
            },
            injected_at: "2026-11-28T19:00:00Z".into(),
        };
        l.add(e("r1/1")).unwrap();
        l.add(e("r1/2")).unwrap();
        // Another process (the next kbz) reads what this one wrote.
        let again = Ledger::new(dir.path(), "lab");
        assert_eq!(again.entries().unwrap().len(), 2);
        again.remove("r1/1").unwrap();
        assert_eq!(l.entries().unwrap(), vec![e("r1/2")]);
    }

    #[test]
    fn a_corrupt_ledger_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::new(dir.path(), "lab");
        std::fs::create_dir_all(dir.path().join("faults")).unwrap();
        std::fs::write(l.path(), "{not json").unwrap();
        assert!(l.entries().unwrap_err().contains("faults/lab.json"));
    }
}
