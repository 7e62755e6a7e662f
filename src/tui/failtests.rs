//! The failover picker, its confirmation, and the Failover view replaying a real run: the
//! first run of the committed Redis kill series (docs/failover/redis-kill-10.json, measured
//! in the lab), fed to the view as the engine fed it live.

use super::app::Request;
use super::confirm::Pending;
use super::failstate::{FailoverView, Finished};
use super::keys::Context;
use super::tests::{app, press, render, snap, typed};
use crate::engine::prober::ProbeEvent;
use crate::failover::fault::FaultKind;
use crate::failover::measure::Sample;
use crate::failover::run::{Event, Mark, Progress};
use crate::failover::workload::{Op, Outcome};
use crate::probe::{ClusterStatus, Member};
use crossterm::event::KeyCode;
use serde_json::Value;

fn redis_selected() -> super::App {
    let mut a = app();
    press(&mut a, &[KeyCode::Down, KeyCode::Char('j')]);
    assert_eq!(a.groups[a.group].name, "redis");
    a
}

#[test]
fn picker_then_typed_confirmation_in_prod() {
    let mut a = redis_selected();
    press(&mut a, &[KeyCode::Char('F')]);
    snap(&mut a, "failover_picker");
    let p = a.picker.as_ref().unwrap();
    assert_eq!(p.targets, ["leader", "redis-01", "redis-02", "redis-03"]);
    assert!(
        !p.faults.contains(&FaultKind::Crash),
        "crash only in the lab"
    );
    // fault: kill -> stop; target: leader -> redis-01; force stays no.
    press(&mut a, &[KeyCode::Right, KeyCode::Down, KeyCode::Right]);
    press(&mut a, &[KeyCode::Enter]);
    assert!(a.picker.is_none());
    snap(&mut a, "failover_confirm");
    let c = a.confirm.as_ref().unwrap();
    assert_eq!(
        c.typed.as_deref(),
        Some("redis"),
        "prod: the cluster is typed"
    );
    press(&mut a, &[KeyCode::Char('y')]);
    assert!(a.requests.is_empty(), "y is not enough in prod");
    press(&mut a, &[KeyCode::Backspace]);
    typed(&mut a, "redis");
    press(&mut a, &[KeyCode::Enter]);
    match a.requests.as_slice() {
        [Request::Execute(done)] => assert_eq!(
            done.pending(),
            &Pending::Failover {
                cluster: "redis".into(),
                fault: FaultKind::Stop,
                target: Some("redis-01".into()),
                force: false,
            }
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn failover_command_and_readonly() {
    let mut a = redis_selected();
    typed(&mut a, ":failover postgres freeze db-slave-01 force");
    press(&mut a, &[KeyCode::Enter]);
    let c = a.confirm.take().expect("a confirmation");
    assert_eq!(c.title, "failover test on postgres");
    assert!(c.body.iter().any(|l| l.starts_with("FORCED")), "{c:?}");
    typed(&mut a, ":failover redis crash");
    press(&mut a, &[KeyCode::Enter]);
    assert!(a.confirm.is_none());
    assert_eq!(
        a.status.as_deref(),
        Some("crash is the lab's host crash: only with kbz --lab")
    );
    typed(&mut a, ":failover redis melt");
    press(&mut a, &[KeyCode::Enter]);
    assert!(
        a.status
            .as_deref()
            .unwrap()
            .contains("\"melt\" is not a cluster, a fault")
    );

    let mut r = redis_selected();
    r.readonly = true;
    press(&mut r, &[KeyCode::Char('F')]);
    assert!(r.picker.is_none());
    assert_eq!(r.status.as_deref(), Some("refused: kbz runs --readonly"));
    typed(&mut r, ":failover redis kill");
    press(&mut r, &[KeyCode::Enter]);
    assert!(r.confirm.is_none() && r.requests.is_empty());
    assert_eq!(r.status.as_deref(), Some("refused: kbz runs --readonly"));
}

/// The committed series' first run, as (time, progress) in the order the run told it.
fn recorded_run() -> (Value, Vec<(f64, Progress)>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/failover/redis-kill-10.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let run = doc["runs"][0].clone();
    let r = &run["report"];
    let f = |v: &Value| v.as_f64().unwrap();
    let s = |v: &Value| v.as_str().map(str::to_string);
    let mut all = Vec::new();
    for e in r["events"].as_array().unwrap() {
        let at = f(&e["at_ms"]);
        all.push((
            at,
            Progress::Event(Event {
                at_ms: at,
                what: s(&e["what"]).unwrap(),
            }),
        ));
    }
    for o in run["ops"].as_array().unwrap() {
        let outcome = match o[3].as_str().unwrap() {
            "ok" => Outcome::Ok,
            "fail" => Outcome::Fail,
            _ => Outcome::Unknown,
        };
        let op = Op {
            id: o[0].as_u64().unwrap(),
            start_ms: f(&o[1]),
            end_ms: f(&o[2]),
            outcome,
            node: s(&o[4]),
            error: s(&o[5]),
        };
        all.push((op.end_ms, Progress::Op(op)));
    }
    for x in run["samples"].as_array().unwrap() {
        let at = f(&x["at_ms"]);
        let target = x["target"]
            .as_array()
            .map(|t| (t[0].as_str().unwrap().to_string(), t[1].as_bool().unwrap()));
        all.push((
            at,
            Progress::Sample(Sample {
                at_ms: at,
                leader: s(&x["leader"]),
                epoch: x["epoch"].as_u64(),
                target,
                target_follows: x["target_follows"].as_bool().unwrap(),
            }),
        ));
    }
    let (inject, heal) = (f(&r["inject_ms"]), f(&r["heal_ms"]));
    let m = &r["measures"];
    let target = s(&r["target"]).unwrap();
    for (at, mark) in [
        (
            0.0,
            Mark::Target {
                host: target.clone(),
                leader: target,
            },
        ),
        (inject, Mark::Injected),
        (
            inject + f(&m["new_leader_ms"]),
            Mark::NewLeader(s(&m["new_leader"]).unwrap()),
        ),
        (heal, Mark::Healed),
        (heal + f(&m["reintegration_ms"]), Mark::Rejoined),
    ] {
        all.push((at, Progress::Mark(at, mark)));
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    (run, all)
}

/// A cluster status from a report's before / after, with one member's liveness changed.
fn status(v: &Value, down: Option<&str>) -> ClusterStatus {
    let members = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let host = m["host"].as_str().unwrap().to_string();
            let is_down = down == Some(host.as_str());
            Member {
                role: if is_down {
                    "master".into()
                } else {
                    m["role"].as_str().unwrap().into()
                },
                state: if is_down {
                    "down".into()
                } else {
                    m["state"].as_str().unwrap().into()
                },
                up: !is_down,
                lag: m["lag"].as_u64(),
                epoch: m["epoch"].as_u64(),
                host,
            }
        })
        .collect();
    ClusterStatus {
        cluster: "redis".into(),
        technology: crate::inventory::Technology::Redis,
        members,
        leader: if down.is_some() {
            None
        } else {
            v["leader"].as_str().map(str::to_string)
        },
        epoch_name: "config-epoch",
        epoch: v["epoch"].as_u64(),
        quorum: None,
        warnings: vec![],
        routes: Default::default(),
        groups: Vec::new(),
        peers: false,
    }
}

fn probe(a: &mut super::App, s: ClusterStatus) {
    a.on_probe(ProbeEvent {
        cluster: "redis".into(),
        status: Ok(s),
        at: std::time::Instant::now(),
        pushed: false,
    });
}

/// The console as a confirmed kill of Redis's leader leaves it: in the Failover view.
fn viewing_a_redis_kill() -> super::App {
    let mut a = redis_selected();
    a.failover = Some(FailoverView::new(
        "redis",
        "Redis + Sentinel",
        FaultKind::Kill,
        None,
    ));
    a.focus = Context::Failover;
    a
}

#[test]
fn failover_view_replays_a_measured_redis_kill() {
    let (run, progress) = recorded_run();
    let r = &run["report"];
    let mut a = viewing_a_redis_kill();
    // 6.5 s in: the leader was killed about 3 s earlier, nothing has been acknowledged since.
    let target = r["target"].as_str().unwrap();
    probe(&mut a, status(&r["before"], Some(target)));
    let view = a.failover.as_mut().unwrap();
    for (_, p) in progress.iter().filter(|(at, _)| *at <= 6_500.0) {
        view.on_progress(p.clone());
    }
    let t = view.tally();
    assert!(t.gap_now_ms > 2_500.0, "{t:?}");
    assert_eq!(view.phase(), "FAULT IN: waiting for a new leader");
    snap(&mut a, "failover_fault_in");
    let screen = render(&mut a, 160, 45);
    assert!(screen.contains("⚡ kill"), "{screen}");
    assert!(screen.contains("no new leader yet"), "{screen}");

    // The whole run, then its end.
    let view = a.failover.as_mut().unwrap();
    for (_, p) in progress.iter().filter(|(at, _)| *at > 6_500.0) {
        view.on_progress(p.clone());
    }
    let t = view.tally();
    let m = &r["measures"];
    assert_eq!(t.ok as u64, m["ok"].as_u64().unwrap());
    assert_eq!(t.unknown as u64, m["unknown"].as_u64().unwrap());
    assert!(
        (t.longest_gap_ms - m["write_gap_ms"].as_f64().unwrap()).abs() < 1.0,
        "the view's gap is the report's: {t:?}"
    );
    view.finished = Some(Finished {
        verdict: r["verdict"].as_str().unwrap().into(),
        good: true,
        lost: Some(0),
        report: Ok("/state/kbz/failover/20261128T194310-redis/report.md".into()),
    });
    probe(&mut a, status(&r["after"], None));
    snap(&mut a, "failover_done");
    let screen = render(&mut a, 160, 45);
    assert!(
        screen.contains(&format!(
            "failed over from {target} to {}",
            r["measures"]["new_leader"].as_str().unwrap()
        )),
        "{screen}"
    );
    assert!(screen.contains("LEADER"), "{screen}");

    // Esc closes a finished test's view; Tab left it for the grid without closing it.
    press(&mut a, &[KeyCode::Tab]);
    assert_eq!(a.focus, Context::Grid);
    press(&mut a, &[KeyCode::Char('F')]);
    assert_eq!(a.focus, Context::Failover, "F shows the test again");
    press(&mut a, &[KeyCode::Esc]);
    assert!(a.failover.is_none() && a.focus == Context::Grid);
}

#[test]
fn esc_stops_a_running_test_once() {
    let mut a = viewing_a_redis_kill();
    press(&mut a, &[KeyCode::Esc, KeyCode::Esc]);
    assert_eq!(a.requests, [Request::StopFailover]);
    assert!(a.failover.as_ref().unwrap().stopping);
    assert!(!a.quit, "Esc in the view does not quit the console");
}
