//! The log pane through real key events: following, search, line filter, pause, the ring's
//! loss and drops, and several hosts merged or split. Snapshots are named as in `tests`.

use super::app::{App, Request};
use super::logpane::LOG_CAPACITY;
use super::tests::{app, press, render, snap, typed};
use crate::engine::logs::LogEvent;
use crossterm::event::KeyCode;
use std::time::Duration;

fn journal(pane_host: usize, app: &mut App, lines: &[&str]) {
    let pane = app.logs.as_mut().unwrap();
    for l in lines {
        pane.on_event(pane_host, LogEvent::Line(l.to_string()));
    }
}

#[test]
fn log_pane_follows_searches_filters_and_pauses() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    assert_eq!(
        a.requests,
        vec![Request::OpenLogs {
            hosts: vec!["db-master-01".into()],
            source: crate::engine::logs::LogSource::Journal { unit: None }
        }]
    );
    let lines: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "2026-11-28T12:00:{:02}.000Z postgres[41]: checkpoint {i} {}",
                i % 60,
                if i % 15 == 0 {
                    "\x1b[31mERROR\x1b[0m disk slow"
                } else {
                    "complete"
                }
            )
        })
        .collect();
    journal(
        0,
        &mut a,
        &lines.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    snap(&mut a, "logs_following");
    // Focus the pane, search, and look at the match.
    press(&mut a, &[KeyCode::Tab, KeyCode::Char('/')]);
    typed(&mut a, "checkpoint 30 ");
    press(&mut a, &[KeyCode::Enter]);
    let pane = a.logs.as_ref().unwrap();
    assert!(pane.paused_at.is_some(), "a search stops following");
    snap(&mut a, "logs_search");
    // Only the error lines, timestamps off, wrapped.
    press(&mut a, &[KeyCode::Char('&')]);
    typed(&mut a, "error");
    press(
        &mut a,
        &[KeyCode::Enter, KeyCode::Char('t'), KeyCode::Char('w')],
    );
    assert_eq!(a.logs.as_ref().unwrap().export().len(), 4);
    snap(&mut a, "logs_filtered");
    let screen = render(&mut a, 160, 45);
    assert!(
        !screen.contains("\x1b"),
        "ANSI codes are rendered, not printed"
    );
    assert!(!screen.contains("[31m"));
    // Pause; new lines arrive below; G follows again.
    press(&mut a, &[KeyCode::Char('&'), KeyCode::Enter]);
    assert!(
        a.logs.as_ref().unwrap().filter.is_none(),
        "an empty filter clears it"
    );
    press(&mut a, &[KeyCode::Char('p')]);
    journal(
        0,
        &mut a,
        &["2026-11-28T12:01:00.000Z app[1]: arrived while paused"],
    );
    assert!(!render(&mut a, 160, 45).contains("arrived while paused"));
    assert!(render(&mut a, 160, 45).contains("PAUSED"));
    press(&mut a, &[KeyCode::Char('G')]);
    assert!(render(&mut a, 160, 45).contains("arrived while paused"));
    // Save asks the loop to write every line.
    press(&mut a, &[KeyCode::Char('s')]);
    match a.requests.last() {
        Some(Request::Save { name, lines }) => {
            assert_eq!(name, "db-master-01");
            assert_eq!(lines.len(), 61);
        }
        other => panic!("{other:?}"),
    }
    // Full screen for demos, Esc back, x closes the pane and its stream.
    press(&mut a, &[KeyCode::Char('f')]);
    snap(&mut a, "logs_fullscreen");
    press(&mut a, &[KeyCode::Esc, KeyCode::Char('x')]);
    assert!(a.logs.is_none());
    assert_eq!(a.requests.last(), Some(&Request::CloseLogs));
}

#[test]
fn log_pane_ring_loss_and_drops() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    let pane = a.logs.as_mut().unwrap();
    for i in 0..(LOG_CAPACITY + 5) {
        pane.on_event(
            0,
            LogEvent::Line(format!("2026-11-28T12:00:00.000Z app[1]: line {i}")),
        );
    }
    assert_eq!((pane.lines(), pane.dropped()), (LOG_CAPACITY, 5));
    pane.on_event(0, LogEvent::Lost("down: no answer for 2 s".into()));
    snap(&mut a, "logs_lost");
    a.logs
        .as_mut()
        .unwrap()
        .on_event(0, LogEvent::Resumed(Duration::from_secs(3)));
    assert!(render(&mut a, 160, 45).contains("following"));
}

#[test]
fn marked_hosts_merge_or_split() {
    let mut a = app();
    press(&mut a, &[KeyCode::Down]);
    assert_eq!(a.groups[a.group].name, "postgres");
    press(
        &mut a,
        &[KeyCode::Char(' '), KeyCode::Right, KeyCode::Char(' ')],
    );
    assert_eq!(a.marked.len(), 2);
    press(&mut a, &[KeyCode::Enter]);
    match a.requests.last() {
        Some(Request::OpenLogs { hosts, .. }) => {
            assert_eq!(hosts, &["db-master-01", "db-slave-01"])
        }
        other => panic!("{other:?}"),
    }
    journal(
        0,
        &mut a,
        &["2026-11-28T12:00:00.000Z patroni[9]: I am the leader"],
    );
    journal(
        1,
        &mut a,
        &["2026-11-28T12:00:01.000Z patroni[9]: following db-master-01"],
    );
    journal(
        0,
        &mut a,
        &["2026-11-28T12:00:02.000Z patroni[9]: lock renewed"],
    );
    snap(&mut a, "logs_merged");
    let screen = render(&mut a, 160, 45);
    let order: Vec<usize> = ["I am the leader", "following db-master-01", "lock renewed"]
        .iter()
        .map(|s| screen.find(s).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "arrival order");
    assert!(screen.contains("db-slave-01  │ "), "host prefixes");
    press(&mut a, &[KeyCode::Tab, KeyCode::Char('m')]);
    snap(&mut a, "logs_split");
}
