//! Snapshots of every view of the console, driven by real key events through the keymap, at
//! 80x24 and 160x45. Deterministic: fixed clock, fixed connection states, no timings.

use super::app::{App, Request, Tab};
use super::confirm::Pending;
use super::keys::Context;
use super::view;
use crate::inventory::{Fleet, Inventory, RuleSet};
use crate::ssh::{CommandEvent, ConnEvent, ConnState, Exit};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

pub(super) fn fleet() -> Fleet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers.example.tsv");
    let inv = Inventory::load(&path).unwrap();
    Fleet::new(&inv, None, &RuleSet::builtin()).unwrap()
}

pub(super) fn app() -> App {
    let mut app = App::new(fleet());
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
            6 if i == 20 => ConnState::HostKeyUnknown {
                key: "ssh-ed25519 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into(),
            },
            _ => ConnState::Up {
                rtt_ms: 0.4 + i as f64 / 10.0,
            },
        };
        app.on_conn(ConnEvent { host: name, state });
    }
    app
}

/// Keys as the event loop routes them: to a prompt or popup while one is open, else through
/// the keymap in the focused context.
pub(super) fn press(app: &mut App, keys: &[KeyCode]) {
    for k in keys {
        if app.on_text_key(*k) {
            continue;
        }
        if let Some(a) = app
            .keymap
            .action_for(KeyEvent::new(*k, KeyModifiers::NONE), app.context())
        {
            app.apply(a);
        }
    }
}

pub(super) fn typed(app: &mut App, text: &str) {
    let keys: Vec<KeyCode> = text.chars().map(KeyCode::Char).collect();
    press(app, &keys);
}

pub(super) fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app, "12:00:00 UTC")).unwrap();
    format!("{}", t.backend())
}

/// Both sizes of one view, under one name.
pub(super) fn snap(app: &mut App, name: &str) {
    insta::assert_snapshot!(format!("{name}_160x45"), render(app, 160, 45));
    insta::assert_snapshot!(format!("{name}_80x24"), render(app, 80, 24));
}

#[test]
fn fleet_view_all_hosts_in_cluster_sections() {
    let mut a = app();
    snap(&mut a, "fleet_all");
    let screen = render(&mut a, 160, 45);
    assert!(
        screen.contains("── redis · Redis + Sentinel 1/3 up"),
        "{screen}"
    );
    assert!(screen.contains("host key unk"), "{screen}");
}

#[test]
fn fleet_view_one_cluster_and_selection() {
    let mut a = app();
    press(&mut a, &[KeyCode::Down, KeyCode::Char('j'), KeyCode::Right]);
    assert_eq!(a.groups[a.group].name, "redis");
    assert_eq!(a.host, 1);
    snap(&mut a, "fleet_redis");
}

#[test]
fn grid_moves_by_rows_and_scrolls_to_the_selected_host() {
    let mut a = app();
    render(&mut a, 80, 24);
    for _ in 0..6 {
        press(&mut a, &[KeyCode::PageDown]);
        render(&mut a, 80, 24);
    }
    assert_eq!(a.host, 6, "one host per row in sections at 80 columns");
    let screen = render(&mut a, 80, 24);
    let selected = a.current_host().unwrap();
    assert!(
        screen.contains(selected.as_str()),
        "selected host on screen"
    );
    let before = a.host;
    press(&mut a, &[KeyCode::PageUp]);
    assert!(a.host < before);
}

#[test]
fn help_lists_every_binding_and_command() {
    let mut a = app();
    press(&mut a, &[KeyCode::Char('?')]);
    snap(&mut a, "help");
    let screen = render(&mut a, 160, 45);
    for b in &a.keymap.bindings {
        assert!(screen.contains(b.help), "help lacks {:?}", b.help);
    }
    press(&mut a, &[KeyCode::Char('q')]);
    assert!(!a.show_help && !a.quit, "q closes help first");
    press(&mut a, &[KeyCode::Char('q')]);
    assert!(a.quit);
}

#[test]
fn tabs_command_log_and_diagnostics() {
    let mut a = app();
    let at = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    for (id, host, cmd) in [
        (1, "db-master-01", "journalctl -o json -f"),
        (2, "redis-01", "systemctl is-active redis"),
        (3, "redis-02", "false"),
    ] {
        a.commands.on_event(CommandEvent::Started {
            id,
            host: host.into(),
            command: cmd.into(),
            at,
        });
    }
    a.commands.on_event(CommandEvent::Ended {
        id: 2,
        exit: Exit::Code(0),
        duration: Duration::from_millis(41),
    });
    a.commands.on_event(CommandEvent::Ended {
        id: 3,
        exit: Exit::Code(1),
        duration: Duration::from_millis(12),
    });
    press(&mut a, &[KeyCode::Tab]);
    assert_eq!((a.focus, a.tab), (Context::Pane, Tab::Commands));
    snap(&mut a, "commands");
    let screen = render(&mut a, 160, 45);
    assert!(screen.contains("exit 1 · 0.01 s"));
    assert!(screen.contains("running"));
    press(&mut a, &[KeyCode::Tab]);
    assert_eq!(a.tab, Tab::Modules);
    press(&mut a, &[KeyCode::Tab]);
    assert_eq!(a.tab, Tab::Diagnostics);
    assert!(render(&mut a, 160, 45).contains(" diagnostics "));
    press(&mut a, &[KeyCode::Tab]);
    assert_eq!(a.focus, Context::Grid, "Tab comes back to the grid");
}

#[test]
fn command_mode_with_history() {
    let mut a = app();
    press(&mut a, &[KeyCode::Char(':')]);
    typed(&mut a, "cluster red");
    snap(&mut a, "command_typing");
    press(&mut a, &[KeyCode::Enter]);
    assert_eq!(a.groups[a.group].name, "redis");
    press(&mut a, &[KeyCode::Char(':')]);
    typed(&mut a, "host haproxy-02");
    press(&mut a, &[KeyCode::Enter]);
    assert_eq!(a.current_host().as_deref(), Some("haproxy-02"));
    press(&mut a, &[KeyCode::Char(':')]);
    typed(&mut a, "frobnicate");
    press(&mut a, &[KeyCode::Enter]);
    snap(&mut a, "command_unknown");
    // ↑ walks back through the history.
    press(&mut a, &[KeyCode::Char(':'), KeyCode::Up, KeyCode::Up]);
    assert_eq!(a.prompt.as_ref().unwrap().text, "host haproxy-02");
    press(&mut a, &[KeyCode::Up, KeyCode::Enter]);
    assert_eq!(a.groups[a.group].name, "redis");
    assert_eq!(
        a.history,
        [
            "cluster red",
            "host haproxy-02",
            "frobnicate",
            "cluster red"
        ]
    );
    press(&mut a, &[KeyCode::Char(':')]);
    typed(&mut a, "mark redis-0*");
    press(&mut a, &[KeyCode::Enter]);
    assert_eq!(a.marked.len(), 3);
    press(&mut a, &[KeyCode::Char(':')]);
    typed(&mut a, "q");
    press(&mut a, &[KeyCode::Enter]);
    assert!(a.quit);
}

#[test]
fn slash_filters_the_grid_with_a_regex() {
    let mut a = app();
    press(&mut a, &[KeyCode::Char('/')]);
    typed(&mut a, "^redis-0[12]");
    assert!(render(&mut a, 160, 45).contains("/^redis-0[12]▏"));
    press(&mut a, &[KeyCode::Enter]);
    assert_eq!(a.selected_hosts(), ["redis-01", "redis-02"]);
    snap(&mut a, "filter_redis");
    // `!` inverts; matching covers roles and live states too.
    press(&mut a, &[KeyCode::Esc, KeyCode::Char('/')]);
    typed(&mut a, "!Up");
    press(&mut a, &[KeyCode::Enter]);
    assert!(
        a.selected_hosts()
            .iter()
            .all(|h| !matches!(a.state(h), ConnState::Up { .. }))
    );
    assert_eq!(a.selected_hosts().len(), 10);
    press(&mut a, &[KeyCode::Esc, KeyCode::Char('/')]);
    typed(&mut a, "(");
    press(&mut a, &[KeyCode::Enter]);
    assert_eq!(a.selected_hosts().len(), 29);
    assert!(render(&mut a, 160, 45).contains("not a regex"));
    press(&mut a, &[KeyCode::Esc]);
    assert!(a.filter.is_none() && !a.quit);
    press(&mut a, &[KeyCode::Esc]);
    assert!(a.quit);
}

#[test]
fn run_is_confirmed_typed_in_prod_and_refused_readonly() {
    let mut a = app();
    a.fleet.env = "lab".into();
    press(&mut a, &[KeyCode::Char('!')]);
    assert_eq!(a.prompt.as_ref().map(|p| p.text.as_str()), Some("run "));
    typed(&mut a, "systemctl restart patroni");
    assert_eq!(
        a.prompt.as_ref().map(|p| p.text.as_str()),
        Some("run systemctl restart patroni")
    );
    press(&mut a, &[KeyCode::Enter]);
    assert!(a.confirm.is_some(), "{:?}", a.status);
    snap(&mut a, "confirm_run");
    press(&mut a, &[KeyCode::Char('y')]);
    match a.requests.last() {
        Some(Request::Execute(done)) => assert_eq!(
            done.pending(),
            &Pending::Run {
                hosts: vec!["db-master-01".into()],
                command: "systemctl restart patroni".into()
            }
        ),
        other => panic!("{other:?}"),
    }
    // ENV prod: the host's name must be typed.
    let mut p = app();
    assert_eq!(p.fleet.env, "prod");
    press(&mut p, &[KeyCode::Char(':')]);
    typed(&mut p, "run uptime");
    press(
        &mut p,
        &[KeyCode::Enter, KeyCode::Char('y'), KeyCode::Enter],
    );
    assert!(p.confirm.is_some(), "y does not confirm in prod");
    snap(&mut p, "confirm_prod");
    press(&mut p, &[KeyCode::Esc]);
    assert!(p.confirm.is_none() && p.requests.is_empty());
    // --readonly: greyed in the hints, refused with a reason.
    let mut r = app();
    r.readonly = true;
    snap(&mut r, "readonly");
    press(&mut r, &[KeyCode::Char('!')]);
    assert!(r.prompt.is_none() && r.confirm.is_none());
    assert_eq!(r.status.as_deref(), Some("refused: kbz runs --readonly"));
    press(&mut r, &[KeyCode::Char(':')]);
    typed(&mut r, "run reboot");
    press(&mut r, &[KeyCode::Enter]);
    assert!(r.confirm.is_none());
}

#[test]
fn unknown_host_key_is_shown_then_accepted() {
    let mut a = app();
    press(&mut a, &[KeyCode::Char(':')]);
    let unknown = a.fleet.hosts[20].hostname.clone();
    typed(&mut a, &format!("host {unknown}"));
    press(&mut a, &[KeyCode::Enter, KeyCode::Char('a')]);
    assert!(a.confirm.is_some(), "{:?} {:?}", a.current_host(), a.status);
    snap(&mut a, "confirm_host_key");
    press(&mut a, &[KeyCode::Char('y'), KeyCode::Enter]);
    assert!(a.requests.is_empty(), "prod: the name must be typed");
    press(&mut a, &[KeyCode::Backspace]);
    typed(&mut a, &unknown);
    press(&mut a, &[KeyCode::Enter]);
    assert!(matches!(
        a.requests.last(),
        Some(Request::Execute(done)) if matches!(done.pending(), Pending::TrustKey { .. })
    ));
}

#[test]
fn a_thousand_hosts_shrink_to_one_line_tiles() {
    let mut tsv = String::from(
        "ENV\tIP_PUBLIQUE\tHOSTNAME\tIP_PRIVEE\tFQDN\tUSER_SSH\tPOOL\tROLE\tSUBROLE\tDOCKER_STACK\tCORE\tNOTES\n",
    );
    for i in 0..1000 {
        tsv.push_str(&format!(
            "lab\t\tapp-{i:04}\t10.1.{}.{}\t\troot\tapps\tapp\tweb\t\t\t\n",
            i / 250,
            i % 250 + 1
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("servers.tsv");
    std::fs::write(&file, tsv).unwrap();
    let inv = Inventory::load(&file).unwrap();
    let mut a = App::new(Fleet::new(&inv, None, &RuleSet::builtin()).unwrap());
    for i in 0..1000 {
        a.on_conn(ConnEvent {
            host: format!("app-{i:04}"),
            state: ConnState::Up { rtt_ms: 1.0 },
        });
    }
    snap(&mut a, "thousand");
    press(&mut a, &[KeyCode::Char(':')]);
    typed(&mut a, "host app-0999");
    press(&mut a, &[KeyCode::Enter]);
    assert!(
        render(&mut a, 160, 45).contains("app-0999"),
        "scrolls to it"
    );
}

#[test]
fn clicks_select_clusters_and_hosts() {
    let mut a = app();
    render(&mut a, 160, 45);
    let groups = a.layout.groups;
    a.on_click(groups.x + 2, groups.y + 3);
    assert_eq!(a.group, 2);
    render(&mut a, 160, 45);
    let (tile, index) = a.layout.tiles[1];
    a.on_click(tile.x + 1, tile.y + 1);
    assert_eq!(a.host, index);
}

#[test]
fn themes_colour_states_and_no_color_drops_them() {
    use ratatui::style::Color;
    let dir = tempfile::tempdir().unwrap();
    let mut a = app();
    a.themes = Some(super::theme::Themes::new(dir.path()));
    a.set_theme("light");
    let mut t = Terminal::new(TestBackend::new(160, 45)).unwrap();
    t.draw(|f| view::draw(f, &mut a, "12:00:00 UTC")).unwrap();
    let buf = t.backend().buffer().clone();
    let fg_of = |needle: &str| {
        let w = buf.area.width as usize;
        let text: String = buf
            .content
            .iter()
            .map(|c| c.symbol().chars().next().unwrap_or(' '))
            .collect();
        let i = text.find(needle).unwrap();
        buf.content[(i / w) * w + i % w].fg
    };
    assert_eq!(fg_of("down: timeout"), Color::Rgb(0xb0, 0, 0));
    a.set_theme("nonexistent");
    assert!(
        a.status
            .as_deref()
            .unwrap()
            .contains("no theme \"nonexistent\"")
    );
    a.theme = super::theme::Theme::mono("default");
    t.draw(|f| view::draw(f, &mut a, "12:00:00 UTC")).unwrap();
    assert!(
        t.backend()
            .buffer()
            .content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "no colour at all"
    );
}

#[test]
fn modules_tab_catalogue_confirmed_run_progress_and_readonly() {
    use super::modview::{HostProgress, RunView};
    use crate::modules::{Catalogue, RunEvent};
    let catalogue = Catalogue::load(None).unwrap();
    let mut a = app();
    a.fleet.env = "lab".into();
    a.modules = super::modview::ModulesView::new(&catalogue, &[]);
    press(&mut a, &[KeyCode::Tab, KeyCode::Tab]);
    assert_eq!(a.tab, Tab::Modules);
    press(&mut a, &[KeyCode::Down, KeyCode::Down, KeyCode::Char('i')]);
    assert!(a.confirm.is_some(), "{:?}", a.status);
    snap(&mut a, "modules_confirm");
    press(&mut a, &[KeyCode::Char('y')]);
    match a.requests.last() {
        Some(Request::Execute(done)) => assert!(matches!(
            done.pending(),
            Pending::Modules {
                number: 4,
                install: true,
                from: false,
                ..
            }
        )),
        other => panic!("{other:?}"),
    }
    // The run as the runner reports it: a bar per host, steps against the script's.
    a.modules.run = Some(RunView {
        phase: "starting".into(),
        hosts: Vec::new(),
        finished: None,
    });
    a.modules.on_event(&RunEvent::Phase {
        module: 4,
        name: "redis".into(),
        phase: crate::modules::Phase::Install,
        hosts: vec!["redis-01".into(), "redis-02".into(), "redis-03".into()],
    });
    for (host, step) in [
        ("redis-01", "packages"),
        ("redis-01", "password file"),
        ("redis-02", "packages"),
    ] {
        a.modules.on_event(&RunEvent::Step {
            host: host.into(),
            step: step.into(),
        });
    }
    a.modules.on_event(&RunEvent::HostDone {
        host: "redis-03".into(),
        exit: Exit::Code(1),
        duration: Duration::from_millis(300),
    });
    let run = a.modules.run.as_ref().unwrap();
    let p: &HostProgress = &run.hosts[0];
    assert_eq!((p.seen, p.total, p.step.as_str()), (2, 5, "password file"));
    snap(&mut a, "modules_running");
    let screen = render(&mut a, 160, 45);
    assert!(screen.contains("redis-01 · 2/5 password file"), "{screen}");
    assert!(screen.contains("redis-03 · FAILED: exit 1"), "{screen}");
    // x stops a run in progress instead of closing the pane.
    press(&mut a, &[KeyCode::Char('x')]);
    assert_eq!(a.requests.last(), Some(&Request::CancelRun));
    // --readonly: refused.
    let mut r = app();
    r.readonly = true;
    r.modules = super::modview::ModulesView::new(&catalogue, &[]);
    press(
        &mut r,
        &[KeyCode::Tab, KeyCode::Tab, KeyCode::Tab, KeyCode::Char('c')],
    );
    assert!(r.confirm.is_none());
    assert_eq!(r.status.as_deref(), Some("refused: kbz runs --readonly"));
}

#[test]
fn live_roles_quorum_and_warnings_from_the_probes() {
    use crate::engine::prober::ProbeEvent;
    use crate::probe::fixture;
    use crate::tech::patroni::view as patroni;
    let mut a = app();
    let paused = patroni::status(
        "postgres",
        &fixture("patroni/cluster-paused.json"),
        Some(&fixture("patroni/config.json")),
        Some(&patroni::etcd_health(&fixture("etcd/endpoint-health-healthy.json")).unwrap()),
        &Default::default(),
    )
    .unwrap();
    a.on_probe(ProbeEvent {
        cluster: "postgres".into(),
        status: Ok(paused),
        at: std::time::Instant::now(),
        pushed: false,
    });
    a.on_probe(ProbeEvent {
        cluster: "redis".into(),
        status: Err("no member of redis answered: redis-01: timeout after 10 s".into()),
        at: std::time::Instant::now(),
        pushed: true,
    });
    // The load balancers, with the endpoints checked through them.
    a.on_probe(ProbeEvent {
        cluster: "haproxy".into(),
        status: Ok(crate::probe::ClusterStatus {
            cluster: "haproxy".into(),
            technology: crate::inventory::Technology::Haproxy,
            members: vec![],
            leader: Some("haproxy-01".into()),
            epoch_name: "",
            epoch: None,
            quorum: None,
            warnings: vec![],
            routes: Default::default(),
            groups: Vec::new(),
            peers: false,
        }),
        at: std::time::Instant::now(),
        pushed: false,
    });
    let check = |name: &str, ok: bool, rtt: Option<f64>, detail: &str| {
        crate::engine::endpoints::EndpointCheck {
            name: name.into(),
            address: "10.0.0.10:5432".into(),
            protocol: crate::engine::endpoints::protocol(name),
            ok,
            rtt_ms: rtt,
            detail: detail.into(),
            via: "install-01".into(),
        }
    };
    a.on_endpoints(vec![
        check(
            "postgres-primary",
            true,
            Some(1.04),
            "primary on db-master-01",
        ),
        check("redis-master", false, None, "no answer within 5 s"),
    ]);
    // Host basics as captured: one healthy host, one with a failed unit.
    for (host, file) in [
        ("db-master-01", "host/basics-db-master-01.txt"),
        ("db-slave-01", "host/basics-failed-unit.txt"),
    ] {
        let text = fixture(file);
        let remote: f64 = text.lines().next().unwrap().parse().unwrap();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(remote);
        a.on_basics(crate::engine::basics::BasicsEvent {
            host: host.into(),
            basics: crate::probe::host::parse(&text, at, at),
        });
    }
    let screen = render(&mut a, 160, 45);
    assert!(
        screen.contains("── postgres · PostgreSQL + Patroni 3/3 up · leader db-master-01 · survives 1 loss · timeline 1 ⚠ 1"),
        "{screen}"
    );
    assert!(
        screen.contains("probe: no member of redis answered"),
        "{screen}"
    );
    assert!(
        screen.contains("postgres-primary ✓ 1.0 ms · redis-master ✗ no answer within 5 s"),
        "endpoints with the load balancers: {screen}"
    );
    snap(&mut a, "live_all");
    press(&mut a, &[KeyCode::Down]);
    let screen = render(&mut a, 160, 45);
    assert!(
        screen.contains("leader · running"),
        "live role in the tile: {screen}"
    );
    assert!(screen.contains("ld 0.7 mem 4% dk 21%"), "{screen}");
    assert!(screen.contains("⚠ failed: kbz-broken"), "{screen}");
    assert!(
        screen.contains("⚠ postgres is in maintenance mode (paused)"),
        "{screen}"
    );
    assert!(screen.contains("Fix:"), "{screen}");
    assert!(
        screen.contains("patronictl -c /etc/patroni/config.yml resume postgres"),
        "the fix is on screen, wrapped: {screen}"
    );
    snap(&mut a, "live_postgres");
}

#[test]
fn esc_then_a_key_typed_fast_is_two_keys() {
    let mut a = app();
    press(&mut a, &[KeyCode::Enter, KeyCode::Tab]);
    assert_eq!(a.focus, Context::Pane);
    // What a terminal sends for Esc followed at once by x.
    super::key_in(&mut a, KeyEvent::new(KeyCode::Char('x'), KeyModifiers::ALT));
    assert_eq!(a.focus, Context::Grid, "Esc left the pane");
    assert!(a.logs.is_none() && !a.pane_open, "x closed it");
}
