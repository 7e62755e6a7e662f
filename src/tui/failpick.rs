//! Choosing a failover test from the cluster view: the fault, the target (the leader or one
//! host) and whether to run it against the preflight's advice. Enter hands it to the
//! confirmation popup; nothing runs from here.

use super::app::App;
use super::confirm::Pending;
use crate::failover::fault::FaultKind;
use crossterm::event::KeyCode;

pub struct Picker {
    pub cluster: String,
    pub faults: Vec<FaultKind>,
    pub fault: usize,
    /// "leader", then the cluster's hosts.
    pub targets: Vec<String>,
    pub target: usize,
    pub force: bool,
    /// 0: fault, 1: target, 2: force.
    pub row: usize,
    /// The cluster's critical warnings: why it may not fail over.
    pub preflight: Vec<String>,
    pub leader: Option<String>,
}

impl App {
    /// Opens the picker for the selected cluster, or shows the test already there.
    pub fn pick_failover(&mut self) {
        if self.failover.is_some() {
            self.focus = super::keys::Context::Failover;
            return;
        }
        if self.readonly {
            self.status = Some("refused: kbz runs --readonly".into());
            return;
        }
        let name = self.groups.get(self.group).map(|g| g.name.clone());
        let Some(cluster) = name.and_then(|n| self.fleet.clusters.iter().find(|c| c.name == n))
        else {
            self.status =
                Some("select a cluster first (j / k): a failover test is about one cluster".into());
            return;
        };
        if crate::tech::of(cluster.technology).workload.is_none() {
            self.status = Some(format!(
                "no failover test for {} yet ({} have one)",
                cluster.technology.label(),
                crate::tech::labels(|t| t.workload.is_some())
            ));
            return;
        }
        let mut faults = vec![
            FaultKind::Kill,
            FaultKind::Stop,
            FaultKind::Partition,
            FaultKind::Freeze,
        ];
        if self.lab {
            faults.push(FaultKind::Crash);
        }
        let status = self
            .clusters
            .get(&cluster.name)
            .and_then(|s| s.as_ref().ok());
        let mut targets = vec!["leader".to_string()];
        targets.extend(cluster.hosts.iter().cloned());
        self.picker = Some(Picker {
            cluster: cluster.name.clone(),
            faults,
            fault: 0,
            targets,
            target: 0,
            force: false,
            row: 0,
            preflight: status
                .map(|s| {
                    s.warnings
                        .iter()
                        .filter(|w| w.severity == crate::probe::Severity::Critical)
                        .map(|w| w.what.clone())
                        .collect()
                })
                .unwrap_or_default(),
            leader: status.and_then(|s| s.leader.clone()),
        });
    }

    /// A key while the picker is open.
    pub(super) fn picker_key(&mut self, key: KeyCode) {
        let Some(p) = self.picker.as_mut() else {
            return;
        };
        let step = |i: &mut usize, n: usize, up: bool| {
            *i = if up { (*i + 1) % n } else { (*i + n - 1) % n }
        };
        match key {
            KeyCode::Esc | KeyCode::Char('q') => {
                self.picker = None;
                self.status = Some("no failover test".into());
            }
            KeyCode::Up | KeyCode::Char('k') => p.row = p.row.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => p.row = (p.row + 1).min(2),
            KeyCode::Left | KeyCode::Right | KeyCode::Char('h' | 'l' | ' ') => {
                let up = !matches!(key, KeyCode::Left | KeyCode::Char('h'));
                match p.row {
                    0 => step(&mut p.fault, p.faults.len(), up),
                    1 => step(&mut p.target, p.targets.len(), up),
                    _ => p.force = !p.force,
                }
            }
            KeyCode::Enter => {
                let pending = Pending::Failover {
                    cluster: p.cluster.clone(),
                    fault: p.faults[p.fault],
                    target: (p.target > 0).then(|| p.targets[p.target].clone()),
                    force: p.force,
                };
                self.picker = None;
                self.confirm(pending);
            }
            _ => {}
        }
    }

    /// `:failover [CLUSTER] [FAULT] [HOST|leader] [force]`, words in any order; the cluster
    /// defaults to the selected one.
    pub(super) fn failover_command(&mut self, rest: &str) {
        if self.readonly {
            self.status = Some("refused: kbz runs --readonly".into());
            return;
        }
        let mut cluster = self.groups.get(self.group).map(|g| g.name.clone());
        let (mut fault, mut target, mut force) = (FaultKind::Kill, None, false);
        for word in rest.split_whitespace() {
            if let Some(c) = self.fleet.clusters.iter().find(|c| c.name == word) {
                cluster = Some(c.name.clone());
            } else if let Some(k) = FaultKind::ALL.iter().find(|k| k.name() == word) {
                fault = *k;
            } else if word == "force" || word == "--force" {
                force = true;
            } else if word == "leader" {
                target = None;
            } else if self.fleet.host(word).is_some() {
                target = Some(word.to_string());
            } else {
                self.status = Some(format!(
                    "{word:?} is not a cluster, a fault ({}), a host or \"leader\"",
                    FaultKind::ALL.map(FaultKind::name).join(", ")
                ));
                return;
            }
        }
        let Some(cluster) = cluster.filter(|c| self.fleet.clusters.iter().any(|k| k.name == *c))
        else {
            self.status = Some("usage: :failover CLUSTER [FAULT] [HOST|leader] [force]".into());
            return;
        };
        if fault == FaultKind::Crash && !self.lab {
            self.status = Some("crash is the lab's host crash: only with kbz --lab".into());
            return;
        }
        if self.failover.as_ref().is_some_and(|v| v.running()) {
            self.status = Some("a failover test is running: one at a time".into());
            return;
        }
        self.confirm(Pending::Failover {
            cluster,
            fault,
            target,
            force,
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_fault_is_offered_by_name() {
        use crate::failover::fault::FaultKind;
        let names = FaultKind::ALL.map(FaultKind::name);
        assert_eq!(names, ["stop", "kill", "partition", "freeze", "crash"]);
    }
}
