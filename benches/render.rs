//! One frame of the console for a 1,000-host fleet, alone and with a full 10,000-line log
//! pane (goal: 2 ms or less); log ingest while rendering (goal: 200,000 lines/s or more).
//! `cargo bench --bench render`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use keybuzz_console::engine::logs::{LogEvent, LogSource};
use keybuzz_console::inventory::{Fleet, RuleSet, parse};
use keybuzz_console::ssh::{ConnEvent, ConnState};
use keybuzz_console::tui::{App, LOG_CAPACITY, draw_frame};
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

/// A journal line as the console shows it (about 120 characters).
fn line(i: usize) -> String {
    format!(
        "2026-11-28T12:{:02}:{:02}.{:03}Z postgres[4242]: checkpoint complete: wrote {i} buffers (0.1%); sync files=3, longest=0.001 s",
        i / 60000 % 60,
        i / 1000 % 60,
        i % 1000
    )
}

fn with_logs(hosts: usize, lines: usize) -> App {
    let mut app = app();
    let names: Vec<String> = app
        .fleet
        .hosts
        .iter()
        .take(hosts)
        .map(|h| h.hostname.clone())
        .collect();
    app.open_logs(names, LogSource::Journal { unit: None });
    let pane = app.logs.as_mut().expect("pane");
    for i in 0..lines {
        pane.on_event(i % hosts, LogEvent::Line(line(i)));
    }
    app
}

fn frame_with_logs(c: &mut Criterion) {
    for (what, hosts) in [("1 host", 1), ("4 hosts merged", 4)] {
        let mut app = with_logs(hosts, LOG_CAPACITY * hosts);
        for (w, h) in [(160, 45), (80, 24)] {
            let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
            c.bench_function(
                &format!(
                    "frame, 1000 hosts, log pane {} lines ({what}), {w}x{h}",
                    LOG_CAPACITY * hosts
                ),
                |b| b.iter(|| draw_frame(&mut terminal, &mut app)),
            );
        }
    }
}

/// The event loop's work for a burst: ingest every queued line, then draw one frame. Input is
/// read between bursts, so a burst's time is the worst input lag.
fn ingest(c: &mut Criterion) {
    const BURST: usize = 5_000;
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(BURST as u64));
    let lines: Vec<String> = (0..BURST).map(line).collect();
    for (what, filter) in [("plain", false), ("line filter on", true)] {
        let mut app = with_logs(1, LOG_CAPACITY);
        if filter {
            let pane = app.logs.as_mut().expect("pane");
            pane.set_filter(Some(
                keybuzz_console::tui::Pattern::new("sync files=3").expect("regex"),
            ));
        }
        let mut terminal = Terminal::new(TestBackend::new(160, 45)).expect("terminal");
        group.bench_function(
            format!("{BURST} lines then one frame, ring full, {what}"),
            |b| {
                b.iter_batched(
                    || lines.clone(),
                    |burst| {
                        let pane = app.logs.as_mut().expect("pane");
                        for l in burst {
                            pane.on_event(0, LogEvent::Line(l));
                        }
                        draw_frame(&mut terminal, &mut app);
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
    group.finish();
}

criterion_group!(benches, frame, frame_with_logs, ingest);
criterion_main!(benches);
