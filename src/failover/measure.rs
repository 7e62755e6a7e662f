//! What a failover run measured, from the writer's operations and the state the probes saw,
//! all on the run's one clock (ms since start).

use super::workload::{Op, Outcome};
use serde::Serialize;
use std::collections::BTreeSet;

/// One probe of the cluster during the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub at_ms: f64,
    pub leader: Option<String>,
    pub epoch: Option<u64>,
    /// The target's (role, up) as the cluster reports it.
    pub target: Option<(String, bool)>,
    /// The target is a healthy follower (replica streaming / running and up).
    pub target_follows: bool,
}

impl Sample {
    /// The same state, whenever seen.
    pub fn same_state(&self, other: &Sample) -> bool {
        self.leader == other.leader
            && self.epoch == other.epoch
            && self.target == other.target
            && self.target_follows == other.target_follows
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Measures {
    /// First probe after the fault that shows the cluster noticed it.
    pub detection_ms: Option<f64>,
    /// First probe showing a different leader (with a higher epoch when the epoch is known).
    pub new_leader_ms: Option<f64>,
    pub new_leader: Option<String>,
    /// Largest gap between two successful writes, and where it started.
    pub write_gap_ms: f64,
    pub write_gap_from_ms: f64,
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
    /// Acknowledged writes missing after the heal.
    pub lost: Vec<u64>,
    /// Unknown writes found after all.
    pub recovered: usize,
    /// Writes found more than once, counted once each beyond the first (at-least-once
    /// delivery: not losses).
    pub duplicates: usize,
    /// Ids found that were never attempted.
    pub unexpected: Vec<u64>,
    /// Acknowledged writes served by a node other than the leader the cluster had elected
    /// at that time, after it elected a new one: two writable leaders at once.
    pub split_brain: Vec<u64>,
    /// From the heal to the old leader being a healthy follower again.
    pub reintegration_ms: Option<f64>,
    /// Acknowledged writes a member lacks, read on each member (Galera), by member.
    pub missing_on: std::collections::BTreeMap<String, Vec<u64>>,
    /// The members whose own rows were read (for `missing_on`).
    pub read_on: Vec<String>,
}

/// All figures of one run. `inject_ms` / `heal_ms`: when the fault went in and out.
pub fn measure(
    ops: &[Op],
    samples: &[Sample],
    old_leader: &str,
    old_epoch: Option<u64>,
    inject_ms: f64,
    heal_ms: Option<f64>,
    found: Option<&[u64]>,
) -> Measures {
    let mut m = Measures::default();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at_ms >= inject_ms).collect();
    m.detection_ms = after
        .iter()
        .find(|s| {
            s.leader.as_deref() != Some(old_leader) || s.target.as_ref().is_some_and(|t| !t.1)
        })
        .map(|s| s.at_ms - inject_ms);
    let elected = after
        .iter()
        .find(|s| match (&s.leader, s.epoch, old_epoch) {
            (Some(l), Some(e), Some(o)) => l != old_leader && e > o,
            (Some(l), _, _) => l != old_leader,
            _ => false,
        });
    m.new_leader_ms = elected.map(|s| s.at_ms - inject_ms);
    m.new_leader = elected.and_then(|s| s.leader.clone());
    if let Some(h) = heal_ms {
        m.reintegration_ms = samples
            .iter()
            .filter(|s| s.at_ms >= h)
            .find(|s| s.target_follows)
            .map(|s| s.at_ms - h);
    }
    let oks: Vec<&Op> = ops.iter().filter(|o| o.outcome == Outcome::Ok).collect();
    m.ok = oks.len();
    m.fail = ops.iter().filter(|o| o.outcome == Outcome::Fail).count();
    m.unknown = ops.iter().filter(|o| o.outcome == Outcome::Unknown).count();
    // The gap runs from one acknowledgement to the next; before the first and after the
    // last, from and to the ends of the workload.
    let mut edges: Vec<f64> = vec![ops.first().map_or(0.0, |o| o.start_ms)];
    edges.extend(oks.iter().map(|o| o.end_ms));
    edges.push(ops.last().map_or(0.0, |o| o.end_ms));
    for w in edges.windows(2) {
        if w[1] - w[0] > m.write_gap_ms {
            m.write_gap_ms = w[1] - w[0];
            m.write_gap_from_ms = w[0];
        }
    }
    if let Some(all) = found {
        let found: BTreeSet<u64> = all.iter().copied().collect();
        m.duplicates = all.len() - found.len();
        m.lost = oks
            .iter()
            .map(|o| o.id)
            .filter(|id| !found.contains(id))
            .collect();
        m.recovered = ops
            .iter()
            .filter(|o| o.outcome == Outcome::Unknown && found.contains(&o.id))
            .count();
        let attempted: BTreeSet<u64> = ops.iter().map(|o| o.id).collect();
        m.unexpected = found.difference(&attempted).copied().collect();
    }
    // Acknowledged by the old leader while the cluster had elected another: two writable
    // leaders at once.
    if let Some(e) = elected {
        let leader_at = |t: f64| {
            samples
                .iter()
                .rev()
                .find(|s| s.at_ms <= t && s.leader.is_some())
                .and_then(|s| s.leader.as_deref())
        };
        m.split_brain = oks
            .iter()
            .filter(|o| o.start_ms > e.at_ms && o.node.as_deref() == Some(old_leader))
            .filter(|o| leader_at(o.start_ms).is_some_and(|l| l != old_leader))
            .map(|o| o.id)
            .collect();
    }
    m
}

/// The acknowledged writes each member that could be read lacks.
pub fn missing_on(
    ops: &[Op],
    members: &[(String, Result<Vec<u64>, String>)],
) -> std::collections::BTreeMap<String, Vec<u64>> {
    members
        .iter()
        .filter_map(|(m, read)| {
            let have: std::collections::BTreeSet<u64> =
                read.as_ref().ok()?.iter().copied().collect();
            let lacks: Vec<u64> = ops
                .iter()
                .filter(|o| o.outcome == Outcome::Ok && !have.contains(&o.id))
                .map(|o| o.id)
                .collect();
            (!lacks.is_empty()).then(|| (m.clone(), lacks))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_lacking_an_acknowledged_write_is_named_with_it() {
        let ops = [
            op(1, 100.0, Outcome::Ok, "maria-01"),
            op(2, 200.0, Outcome::Unknown, "maria-01"),
            op(3, 300.0, Outcome::Ok, "maria-02"),
        ];
        let members = [
            ("maria-01".to_string(), Ok(vec![1, 3])),
            ("maria-02".to_string(), Ok(vec![1, 2, 3])),
            ("maria-03".to_string(), Ok(vec![1])),
            ("maria-04".to_string(), Err("no answer".to_string())),
        ];
        let m = missing_on(&ops, &members);
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            [("maria-03".to_string(), vec![3])]
        );
    }

    fn op(id: u64, at: f64, outcome: Outcome, node: &str) -> Op {
        Op {
            id,
            start_ms: at,
            end_ms: at + 2.0,
            outcome,
            node: Some(node.into()),
            error: None,
        }
    }

    fn sample(at: f64, leader: Option<&str>, epoch: u64, follows: bool) -> Sample {
        Sample {
            at_ms: at,
            leader: leader.map(String::from),
            epoch: Some(epoch),
            target: Some(("master".into(), leader == Some("a"))),
            target_follows: follows,
        }
    }

    #[test]
    fn a_clean_failover() {
        // Writes every 100 ms; fault at 1000; a gap until 4000; new leader b at 3800.
        let mut ops: Vec<Op> = (1..=10)
            .map(|i| op(i, i as f64 * 100.0, Outcome::Ok, "a"))
            .collect();
        ops.push(op(11, 1100.0, Outcome::Unknown, "a"));
        ops.extend(
            (12..=30)
                .map(|i| op(i, 2000.0 + i as f64 * 100.0, Outcome::Fail, "a"))
                .take(10),
        );
        ops.extend((40..=45).map(|i| op(i, 4000.0 + i as f64 * 10.0, Outcome::Ok, "b")));
        let samples = vec![
            sample(900.0, Some("a"), 0, false),
            sample(3100.0, None, 0, false),
            sample(3800.0, Some("b"), 1, false),
            sample(9000.0, Some("b"), 1, true),
        ];
        // 3 delivered twice: a duplicate, not a loss.
        let found: Vec<u64> = (1..=10).chain(40..=45).chain([11, 3]).collect();
        let m = measure(
            &ops,
            &samples,
            "a",
            Some(0),
            1000.0,
            Some(8000.0),
            Some(&found),
        );
        assert_eq!(m.detection_ms, Some(2100.0));
        assert_eq!(m.new_leader_ms, Some(2800.0));
        assert_eq!(m.new_leader.as_deref(), Some("b"));
        assert_eq!(m.write_gap_ms, 4402.0 - 1002.0);
        assert_eq!(m.write_gap_from_ms, 1002.0);
        assert_eq!((m.ok, m.fail, m.unknown), (16, 10, 1));
        assert!(m.lost.is_empty() && m.unexpected.is_empty());
        assert_eq!(m.recovered, 1);
        assert_eq!(m.duplicates, 1);
        assert!(m.split_brain.is_empty());
        assert_eq!(m.reintegration_ms, Some(1000.0));
    }

    #[test]
    fn lost_acknowledged_writes_and_split_brain_are_counted() {
        // The old master keeps acknowledging after b was elected (a partition): those
        // writes are split brain, and lost when a rejoins as b's replica.
        let mut ops: Vec<Op> = (1..=5)
            .map(|i| op(i, i as f64 * 100.0, Outcome::Ok, "a"))
            .collect();
        ops.extend((6..=9).map(|i| op(i, 4000.0 + i as f64 * 100.0, Outcome::Ok, "a")));
        ops.push(op(10, 6000.0, Outcome::Ok, "b"));
        let samples = vec![
            sample(0.0, Some("a"), 0, false),
            sample(4000.0, Some("b"), 1, false),
        ];
        let found: Vec<u64> = (1..=5).chain([10, 99]).collect();
        let m = measure(&ops, &samples, "a", Some(0), 1000.0, None, Some(&found));
        assert_eq!(m.lost, vec![6, 7, 8, 9]);
        assert_eq!(m.split_brain, vec![6, 7, 8, 9]);
        assert_eq!(m.unexpected, vec![99]);
    }
}
