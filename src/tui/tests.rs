//! Snapshots of the console, driven by real key events through the key table, at 80x24 and
//! 160x45. Deterministic: fixed clock, fixed connection states.

use super::app::App;
use super::{keys, view};
use crate::inventory::{Fleet, Inventory, RuleSet};
use crate::ssh::{ConnEvent, ConnState};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::Path;

fn app() -> App {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers.example.tsv");
    let inv = Inventory::load(&path).unwrap();
    let fleet = Fleet::new(&inv, None, &RuleSet::builtin()).unwrap();
    let mut app = App::new(fleet);
    let names: Vec<String> = app.fleet.hosts.iter().map(|h| h.hostname.clone()).collect();
    for (i, name) in names.into_iter().enumerate() {
        let state = match i % 7 {
            3 => ConnState::Down {
                reason: "timeout after 10 s".into(),
            },
            5 => ConnState::Connecting,
            6 if i == 13 => ConnState::HostKeyChanged {
                expected: vec![],
                got: String::new(),
            },
            _ => ConnState::Up {
                rtt_ms: 0.4 + i as f64 / 10.0,
            },
        };
        app.on_conn(ConnEvent { host: name, state });
    }
    app
}

fn press(app: &mut App, keys_pressed: &[KeyCode]) {
    for k in keys_pressed {
        if let Some(a) = keys::action_for(KeyEvent::new(*k, KeyModifiers::NONE)) {
            app.apply(a);
        }
    }
}

fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app, "12:00:00 UTC")).unwrap();
    format!("{}", t.backend())
}

#[test]
fn fleet_view_all_hosts() {
    let mut a = app();
    insta::assert_snapshot!("fleet_all_160x45", render(&mut a, 160, 45));
    insta::assert_snapshot!("fleet_all_80x24", render(&mut a, 80, 24));
}

#[test]
fn fleet_view_one_cluster_and_selection() {
    let mut a = app();
    press(&mut a, &[KeyCode::Down, KeyCode::Char('j'), KeyCode::Right]);
    assert_eq!(a.groups[a.group].name, "redis");
    assert_eq!(a.host, 1);
    insta::assert_snapshot!("fleet_redis_160x45", render(&mut a, 160, 45));
    insta::assert_snapshot!("fleet_redis_80x24", render(&mut a, 80, 24));
}

#[test]
fn grid_scrolls_to_the_selected_host_and_help_opens() {
    let mut a = app();
    render(&mut a, 80, 24);
    press(
        &mut a,
        &[
            KeyCode::PageDown,
            KeyCode::PageDown,
            KeyCode::PageDown,
            KeyCode::PageDown,
        ],
    );
    assert_eq!(a.host, 4 * a.columns);
    let screen = render(&mut a, 80, 24);
    let selected = &a.fleet.hosts[a.host].hostname;
    assert!(
        screen.contains(selected.as_str()),
        "the selected host is on screen"
    );
    press(&mut a, &[KeyCode::Char('?')]);
    insta::assert_snapshot!("help_80x24", render(&mut a, 80, 24));
    press(&mut a, &[KeyCode::Char('q')]);
    assert!(!a.show_help && !a.quit, "q closes help first");
    press(&mut a, &[KeyCode::Char('q')]);
    assert!(a.quit);
}

#[test]
fn log_pane_shows_lines_loss_and_drops() {
    use super::app::{LOG_CAPACITY, Request};
    use crate::engine::logs::LogEvent;
    let mut a = app();
    press(&mut a, &[KeyCode::Enter]);
    assert_eq!(a.requests, vec![Request::OpenLogs("db-master-01".into())]);
    let pane = a.logs.as_mut().unwrap();
    for i in 0..(LOG_CAPACITY + 5) {
        pane.on_event(LogEvent::Line(format!(
            "2026-11-28T12:00:00.000Z app[1]: line {i}"
        )));
    }
    assert_eq!(
        (pane.lines.len(), pane.dropped),
        (LOG_CAPACITY, 5),
        "ring buffer keeps the newest"
    );
    pane.on_event(LogEvent::Lost("down: no answer for 2 s".into()));
    insta::assert_snapshot!("logs_lost_160x45", render(&mut a, 160, 45));
    a.logs
        .as_mut()
        .unwrap()
        .on_event(LogEvent::Resumed(std::time::Duration::from_secs(3)));
    assert!(render(&mut a, 160, 45).contains("following"));
    press(&mut a, &[KeyCode::Char('x')]);
    assert!(a.logs.is_none());
    assert_eq!(a.requests.last(), Some(&Request::CloseLogs));
}

/// Keys as the event loop routes them: to the filter input while it is open.
fn type_keys(app: &mut App, keys_pressed: &[KeyCode]) {
    for k in keys_pressed {
        if app.input.is_some() {
            app.on_input(*k);
        } else if let Some(a) = keys::action_for(KeyEvent::new(*k, KeyModifiers::NONE)) {
            app.apply(a);
        }
    }
}

fn chars(s: &str) -> Vec<KeyCode> {
    s.chars().map(KeyCode::Char).collect()
}

#[test]
fn slash_filters_the_grid_with_a_regex() {
    let mut a = app();
    type_keys(&mut a, &[KeyCode::Char('/')]);
    type_keys(&mut a, &chars("^redis-0[12]"));
    assert!(
        render(&mut a, 160, 45).contains("/^redis-0[12]▏"),
        "the filter being typed is shown"
    );
    type_keys(&mut a, &[KeyCode::Enter]);
    assert_eq!(a.selected_hosts(), ["redis-01", "redis-02"]);
    insta::assert_snapshot!("filter_redis_80x24", render(&mut a, 80, 24));
    // `!` inverts; matching covers roles and live states too.
    type_keys(&mut a, &[KeyCode::Esc, KeyCode::Char('/')]);
    type_keys(&mut a, &chars("!Up"));
    type_keys(&mut a, &[KeyCode::Enter]);
    assert!(
        a.selected_hosts()
            .iter()
            .all(|h| !matches!(a.state(h), ConnState::Up { .. }))
    );
    assert_eq!(a.selected_hosts().len(), 9);
    // Not a regex: said in the title, nothing hidden.
    type_keys(
        &mut a,
        &[
            KeyCode::Esc,
            KeyCode::Char('/'),
            KeyCode::Char('('),
            KeyCode::Enter,
        ],
    );
    assert_eq!(a.selected_hosts().len(), 29);
    assert!(render(&mut a, 160, 45).contains("not a regex"));
    // Esc clears the filter before it quits.
    type_keys(&mut a, &[KeyCode::Esc]);
    assert!(a.filter.is_none() && !a.quit);
    type_keys(&mut a, &[KeyCode::Esc]);
    assert!(a.quit);
}
