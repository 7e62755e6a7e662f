//! The modules tab: the catalogue with each module's last outcome, the run in progress with a
//! progress bar per host (steps announced by `::step` against the steps its script has), and
//! the run history. Runs are launched through the confirmation popup; their lines stream into
//! the log pane.

use super::app::App;
use super::keys::Context;
use crate::modules::record::Summary;
use crate::modules::{Catalogue, Phase, RunEvent};
use crate::ssh::Exit;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph};
use std::collections::HashMap;

pub struct ModuleRow {
    pub number: u32,
    pub name: String,
    pub title: String,
    pub wipes: String,
    /// "ok 12.0 s (run id)", "never run"...
    pub last: String,
}

pub struct HostProgress {
    pub host: String,
    pub step: String,
    pub seen: usize,
    pub total: usize,
    /// (succeeded, how it ended).
    pub done: Option<(bool, String)>,
}

pub struct RunView {
    pub phase: String,
    pub hosts: Vec<HostProgress>,
    /// The outcome line once the run has ended.
    pub finished: Option<String>,
}

#[derive(Default)]
pub struct ModulesView {
    pub rows: Vec<ModuleRow>,
    pub selected: usize,
    pub run: Option<RunView>,
    /// Recent runs, newest first, one line each.
    pub history: Vec<String>,
    /// `::step` lines in each module's phase script: a host's progress bar's length.
    pub steps: HashMap<(u32, Phase), usize>,
}

impl ModulesView {
    pub fn new(catalogue: &Catalogue, runs: &[Summary]) -> ModulesView {
        let mut steps = HashMap::new();
        for m in &catalogue.modules {
            for p in [Phase::Cleanup, Phase::Install, Phase::Verify] {
                let n = m.script(p).map_or(0, |s| s.matches("::step ").count());
                steps.insert((m.number(), p), n);
            }
        }
        let mut view = ModulesView {
            rows: catalogue
                .modules
                .iter()
                .map(|m| ModuleRow {
                    number: m.number(),
                    name: m.manifest.name.clone(),
                    title: m.manifest.title.clone(),
                    wipes: m.manifest.wipes.clone(),
                    last: String::new(),
                })
                .collect(),
            steps,
            ..ModulesView::default()
        };
        view.refresh(runs);
        view
    }

    /// Last outcomes and history from the recorded runs.
    pub fn refresh(&mut self, runs: &[Summary]) {
        for row in &mut self.rows {
            // The module's own outcome in the last run that reached it, not the run's.
            row.last = runs
                .iter()
                .rev()
                .find_map(|r| {
                    let phases: Vec<_> =
                        r.phases.iter().filter(|p| p.module == row.number).collect();
                    if phases.is_empty() {
                        return None;
                    }
                    let failed = phases
                        .iter()
                        .any(|p| p.hosts.iter().any(|h| !h.exit.success()));
                    let took: f64 = phases.iter().map(|p| p.duration.as_secs_f64()).sum();
                    let word = if failed { "failed" } else { "ok" };
                    Some(format!("{} {word} {took:.1} s", r.command))
                })
                .unwrap_or_else(|| "never run".into());
        }
        self.history = runs
            .iter()
            .rev()
            .take(20)
            .map(|r| {
                format!(
                    "{}  {:<8} {:<9} {:>6.1} s",
                    r.id,
                    r.command,
                    r.outcome,
                    r.duration.as_secs_f64()
                )
            })
            .collect();
    }

    pub fn on_event(&mut self, ev: &RunEvent) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        match ev {
            RunEvent::Phase {
                module,
                name,
                phase,
                hosts,
            } => {
                let total = self.steps.get(&(*module, *phase)).copied().unwrap_or(0);
                run.phase = format!("module {module} {name}: {}", phase.name());
                run.hosts = hosts
                    .iter()
                    .map(|h| HostProgress {
                        host: h.clone(),
                        step: "starting".into(),
                        seen: 0,
                        total,
                        done: None,
                    })
                    .collect();
            }
            RunEvent::Step { host, step } => {
                if let Some(h) = run.hosts.iter_mut().find(|h| h.host == *host) {
                    h.seen += 1;
                    h.step = step.clone();
                }
            }
            RunEvent::HostDone {
                host,
                exit,
                duration,
            } => {
                if let Some(h) = run.hosts.iter_mut().find(|h| h.host == *host) {
                    let how = match exit {
                        Exit::Code(0) => format!("ok in {:.1} s", duration.as_secs_f64()),
                        Exit::Code(c) => format!("FAILED: exit {c} at \"{}\"", h.step),
                        other => format!("FAILED: {other:?}"),
                    };
                    h.done = Some((exit.success(), how));
                }
            }
            RunEvent::Line { .. } => {}
        }
    }
}

pub fn draw(f: &mut Frame, app: &App, block: Block, area: Rect) {
    let t = &app.theme;
    let view = &app.modules;
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(inner);
    let mut lines: Vec<Line> = view
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let style = if i == view.selected && app.focus == Context::Pane {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            let colour = if r.last.contains(" ok") {
                t.ok
            } else if r.last.contains("failed") || r.last.contains("cancelled") {
                t.bad
            } else {
                t.muted
            };
            Line::from(vec![
                Span::styled(format!("{:>2} {:<9}", r.number, r.name), style),
                Span::styled(format!("{:<22}", r.last), Style::new().fg(colour)),
                Span::styled(r.title.clone(), style),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "i install · I install from here · c cleanup (confirmed)",
        Style::new().fg(t.muted),
    ));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "runs",
        Style::new().fg(t.accent).add_modifier(Modifier::BOLD),
    ));
    lines.extend(
        view.history
            .iter()
            .map(|h| Line::styled(h.clone(), Style::new().fg(t.muted))),
    );
    f.render_widget(Paragraph::new(lines), left);
    let Some(run) = &view.run else {
        f.render_widget(
            Paragraph::new(" no run in progress").style(Style::new().fg(t.muted)),
            right,
        );
        return;
    };
    let head = match &run.finished {
        Some(done) => Line::styled(done.clone(), Style::new().add_modifier(Modifier::BOLD)),
        None => Line::styled(
            format!("{} (x stops it)", run.phase),
            Style::new().fg(t.accent).add_modifier(Modifier::BOLD),
        ),
    };
    f.render_widget(Paragraph::new(head), Rect { height: 1, ..right });
    for (i, h) in run.hosts.iter().enumerate() {
        let y = right.y + 1 + i as u16;
        if y >= right.y + right.height {
            break;
        }
        let (ratio, label, colour) = match &h.done {
            Some((true, how)) => (1.0, format!("{} · {how}", h.host), t.ok),
            Some((false, how)) => (1.0, format!("{} · {how}", h.host), t.bad),
            None => (
                if h.total == 0 {
                    0.0
                } else {
                    (h.seen as f64 / h.total as f64).min(1.0)
                },
                format!("{} · {}/{} {}", h.host, h.seen, h.total, h.step),
                t.accent,
            ),
        };
        let gauge = Gauge::default()
            .ratio(ratio)
            .label(label)
            .gauge_style(Style::new().fg(colour));
        f.render_widget(gauge, Rect::new(right.x, y, right.width, 1));
    }
}
