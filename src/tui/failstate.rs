//! A failover test as the console follows it: what the run has said so far (events, every
//! write, the leader it sees, its marks) and, at the end, its verdict and report. Fed by
//! `failrun`, drawn by `failview`; time is the run's own clock, so a frame is deterministic.

use crate::failover::fault::FaultKind;
use crate::failover::run::{Event, Mark, Progress, RunReport};
use crate::failover::workload::{Op, Outcome};
use std::path::PathBuf;

/// How the run ended.
pub struct Finished {
    pub verdict: String,
    /// Failed over and lost nothing it acknowledged.
    pub good: bool,
    pub lost: Option<usize>,
    pub report: Result<PathBuf, String>,
}

pub struct FailoverView {
    pub cluster: String,
    pub technology: String,
    pub fault: FaultKind,
    /// Asked for: a host, or None for the leader.
    pub asked: Option<String>,
    pub target: Option<String>,
    pub old_leader: Option<String>,
    pub events: Vec<Event>,
    pub ops: Vec<Op>,
    /// The latest moment the run told of (ms on its clock).
    pub now_ms: f64,
    pub injected_ms: Option<f64>,
    pub healed_ms: Option<f64>,
    pub detected_ms: Option<f64>,
    pub new_leader: Option<(f64, String)>,
    pub rejoined_ms: Option<f64>,
    /// Esc was pressed: the run is healing and ending.
    pub stopping: bool,
    pub finished: Option<Finished>,
}

/// Write counts and gaps, as the view shows them.
#[derive(Debug, Default, PartialEq)]
pub struct Tally {
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
    /// Since the last acknowledged write (0 before the first write).
    pub gap_now_ms: f64,
    pub longest_gap_ms: f64,
}

impl Finished {
    pub fn of(report: &RunReport, written: Result<PathBuf, String>) -> Finished {
        let m = &report.measures;
        let read_back = report.read_back_from.is_some();
        Finished {
            verdict: report.verdict.clone(),
            good: report.completed
                && m.new_leader.is_some()
                && read_back
                && m.lost.is_empty()
                && m.split_brain.is_empty(),
            lost: read_back.then_some(m.lost.len()),
            report: written,
        }
    }
}

impl FailoverView {
    pub fn new(cluster: &str, technology: &str, fault: FaultKind, asked: Option<String>) -> Self {
        FailoverView {
            cluster: cluster.to_string(),
            technology: technology.to_string(),
            fault,
            asked,
            target: None,
            old_leader: None,
            events: Vec::new(),
            ops: Vec::new(),
            now_ms: 0.0,
            injected_ms: None,
            healed_ms: None,
            detected_ms: None,
            new_leader: None,
            rejoined_ms: None,
            stopping: false,
            finished: None,
        }
    }

    pub fn running(&self) -> bool {
        self.finished.is_none()
    }

    pub fn on_progress(&mut self, p: Progress) {
        match p {
            Progress::Event(e) => {
                self.now_ms = self.now_ms.max(e.at_ms);
                self.events.push(e);
            }
            Progress::Op(o) => {
                self.now_ms = self.now_ms.max(o.end_ms);
                self.ops.push(o);
            }
            Progress::Sample(s) => {
                self.now_ms = self.now_ms.max(s.at_ms);
                if let Some(at) = self.injected_ms
                    && self.detected_ms.is_none()
                    && (s.leader != self.old_leader || s.target.as_ref().is_some_and(|t| !t.1))
                {
                    self.detected_ms = Some(s.at_ms - at);
                }
            }
            Progress::Mark(at, m) => {
                self.now_ms = self.now_ms.max(at);
                match m {
                    Mark::Target { host, leader } => {
                        self.target = Some(host);
                        self.old_leader = Some(leader);
                    }
                    Mark::Injected => self.injected_ms = Some(at),
                    Mark::Healed => self.healed_ms = Some(at),
                    Mark::NewLeader(l) => self.new_leader = Some((at, l)),
                    Mark::Rejoined => self.rejoined_ms = Some(at),
                }
            }
        }
    }

    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        let mut last_ack = self.ops.first().map(|o| o.start_ms);
        for o in &self.ops {
            match o.outcome {
                Outcome::Ok => {
                    t.ok += 1;
                    if let Some(prev) = last_ack {
                        t.longest_gap_ms = t.longest_gap_ms.max(o.end_ms - prev);
                    }
                    last_ack = Some(o.end_ms);
                }
                Outcome::Fail => t.fail += 1,
                Outcome::Unknown => t.unknown += 1,
            }
        }
        if let Some(prev) = last_ack {
            t.gap_now_ms = (self.now_ms - prev).max(0.0);
            t.longest_gap_ms = t.longest_gap_ms.max(t.gap_now_ms);
        }
        t
    }

    /// Where the run is, in a few words.
    pub fn phase(&self) -> &'static str {
        if self.finished.is_some() {
            "done"
        } else if self.stopping {
            "stopping: healing the fault"
        } else if self.rejoined_ms.is_some() {
            "old leader back: reading every write back"
        } else if self.healed_ms.is_some() {
            "healed: waiting for the old leader to follow"
        } else if self.new_leader.is_some() {
            "new leader: clients settling"
        } else if self.injected_ms.is_some() {
            "FAULT IN: waiting for a new leader"
        } else if self.target.is_some() {
            "writing: the healthy baseline"
        } else {
            "preflight"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::measure::Sample;

    fn op(id: u64, end: f64, outcome: Outcome) -> Progress {
        Progress::Op(Op {
            id,
            start_ms: end - 5.0,
            end_ms: end,
            outcome,
            node: Some("redis-01".into()),
            error: None,
        })
    }

    #[test]
    fn gaps_grow_while_nothing_is_acknowledged_and_close_on_the_next_ack() {
        let mut v = FailoverView::new("redis", "Redis", FaultKind::Kill, None);
        v.on_progress(op(1, 100.0, Outcome::Ok));
        v.on_progress(op(2, 175.0, Outcome::Ok));
        v.on_progress(op(3, 1_200.0, Outcome::Unknown));
        v.on_progress(op(4, 1_300.0, Outcome::Fail));
        let t = v.tally();
        assert_eq!((t.ok, t.fail, t.unknown), (2, 1, 1));
        assert_eq!(t.gap_now_ms, 1_125.0, "growing since the ack at 175 ms");
        assert_eq!(t.longest_gap_ms, 1_125.0);
        v.on_progress(op(5, 4_175.0, Outcome::Ok));
        let t = v.tally();
        assert_eq!(t.gap_now_ms, 0.0);
        assert_eq!(t.longest_gap_ms, 4_000.0, "closed at the next ack");
    }

    #[test]
    fn detection_is_the_first_sign_after_the_fault() {
        let mut v = FailoverView::new("redis", "Redis", FaultKind::Kill, None);
        let sample = |at: f64, leader: &str, up: bool| {
            Progress::Sample(Sample {
                at_ms: at,
                leader: Some(leader.into()),
                epoch: Some(3),
                target: Some(("master".into(), up)),
                target_follows: false,
            })
        };
        v.on_progress(Progress::Mark(
            10.0,
            Mark::Target {
                host: "redis-01".into(),
                leader: "redis-01".into(),
            },
        ));
        v.on_progress(sample(500.0, "redis-01", true));
        v.on_progress(Progress::Mark(3_000.0, Mark::Injected));
        v.on_progress(sample(3_500.0, "redis-01", true));
        assert_eq!(v.detected_ms, None);
        v.on_progress(sample(6_200.0, "redis-01", false));
        assert_eq!(v.detected_ms, Some(3_200.0));
        assert_eq!(v.phase(), "FAULT IN: waiting for a new leader");
    }
}
