//! One frame of the console for a 1,000-host fleet (goal: 2 ms or less).
//! `cargo bench --bench render`

use criterion::{Criterion, criterion_group, criterion_main};
use keybuzz_console::inventory::{Fleet, RuleSet, parse};
use keybuzz_console::ssh::{ConnEvent, ConnState};
use keybuzz_console::tui::{App, draw_frame};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::Path;

/// 1,000 hosts in 50 Redis pools of 20, every state represented.
fn app() -> App {
    let mut tsv = String::from("ENV\tHOSTNAME\tIP_PRIVEE\tPOOL\tROLE\tSUBROLE\n");
    for i in 0..1000u32 {
        tsv.push_str(&format!(
            "prod\thost-{i:04}\t10.{}.{}.{}\tpool-{}\tredis\treplica\n",
            i / 65536,
            i / 256 % 256,
            i % 256,
            i / 20
        ));
    }
    let inv = parse(Path::new("bench.tsv"), tsv.as_bytes()).expect("valid inventory");
    let fleet = Fleet::new(&inv, None, &RuleSet::builtin()).expect("fleet");
    let names: Vec<String> = fleet.hosts.iter().map(|h| h.hostname.clone()).collect();
    let mut app = App::new(fleet);
    for (i, host) in names.into_iter().enumerate() {
        let state = match i % 4 {
            0 => ConnState::Down {
                reason: "timeout after 10 s".into(),
            },
            1 => ConnState::Connecting,
            _ => ConnState::Up { rtt_ms: 0.5 },
        };
        app.on_conn(ConnEvent { host, state });
    }
    app
}

fn frame(c: &mut Criterion) {
    let mut app = app();
    for (w, h) in [(160, 45), (80, 24), (300, 90)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        c.bench_function(&format!("frame, 1000 hosts, {w}x{h}"), |b| {
            b.iter(|| draw_frame(&mut terminal, &mut app))
        });
    }
}

criterion_group!(benches, frame);
criterion_main!(benches);
