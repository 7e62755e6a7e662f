//! The Failover view, built for a room full of people: the members changing role live, the
//! counters, the write-success strip with its gap growing and closing, the running timeline
//! of events, and the verdict. It takes the whole body of the screen while shown.

use super::app::App;
use super::failstate::FailoverView;
use crate::failover::workload::Outcome;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

fn secs(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let Some(v) = &app.failover else {
        return;
    };
    let members = app
        .clusters
        .get(&v.cluster)
        .and_then(|s| s.as_ref().ok())
        .map_or(0, |s| s.members.len());
    let top_h = (members.max(3) as u16 + 2).min(area.height / 3).max(5);
    let verdict_len = verdict_text(app, v).0.chars().count() + 1;
    let verdict_h = verdict_len.div_ceil(area.width.saturating_sub(2).max(1) as usize) as u16 + 2;
    let [title, top, strip, timeline, verdict] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(top_h),
        Constraint::Length(5),
        Constraint::Min(3),
        Constraint::Length(verdict_h.min(5)),
    ])
    .areas(area);
    draw_title(f, app, v, title);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
    draw_members(f, app, v, left);
    draw_counters(f, app, v, right);
    draw_strip(f, app, v, strip);
    draw_timeline(f, app, v, timeline);
    draw_verdict(f, app, v, verdict);
}

fn draw_title(f: &mut Frame, app: &App, v: &FailoverView, area: Rect) {
    let t = &app.theme;
    let target = match (&v.target, &v.asked) {
        (Some(h), _) if v.old_leader.as_ref() == Some(h) => format!("{h} (the leader)"),
        (Some(h), _) | (None, Some(h)) => h.clone(),
        (None, None) => "the leader".into(),
    };
    let colour = if v.finished.as_ref().is_some_and(|d| d.good) {
        t.ok
    } else if v.injected_ms.is_some() && v.healed_ms.is_none() || v.finished.is_some() {
        t.bad
    } else {
        t.accent
    };
    let line = Line::from(vec![
        Span::styled(
            " FAILOVER TEST ",
            Style::new()
                .fg(colour)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!(
            " {} · {} on {target} · {} · ",
            v.cluster,
            v.fault.name(),
            secs(v.now_ms)
        )),
        Span::styled(
            v.phase(),
            Style::new().fg(colour).add_modifier(Modifier::BOLD),
        ),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn draw_members(f: &mut Frame, app: &App, v: &FailoverView, area: Rect) {
    let t = &app.theme;
    let status = app.clusters.get(&v.cluster).and_then(|s| s.as_ref().ok());
    let fault_in = v.injected_ms.is_some() && v.healed_ms.is_none();
    let mut lines = Vec::new();
    for m in status.map(|s| s.members.as_slice()).unwrap_or_default() {
        let leads = status.and_then(|s| s.leader.as_ref()) == Some(&m.host);
        let colour = if !m.up {
            t.bad
        } else if leads {
            t.ok
        } else {
            t.text
        };
        let mut spans = vec![
            Span::styled(if m.up { " ● " } else { " ✕ " }, Style::new().fg(colour)),
            Span::styled(
                format!("{:<14}", m.host),
                if leads {
                    Style::new().add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                },
            ),
            Span::styled(
                format!("{:<10}", if leads { "LEADER" } else { m.role.as_str() }),
                Style::new().fg(colour).add_modifier(if leads {
                    Modifier::BOLD
                } else {
                    Modifier::empty()
                }),
            ),
            Span::styled(m.state.clone(), Style::new().fg(t.muted)),
        ];
        if fault_in && v.target.as_ref() == Some(&m.host) {
            spans.push(Span::styled(
                format!("  ⚡ {}", v.fault.name()),
                Style::new().fg(t.bad).add_modifier(Modifier::BOLD),
            ));
        }
        lines.push(Line::from(spans));
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            " waiting for the cluster's first probe",
            Style::new().fg(t.muted),
        ));
    }
    let epoch = status.map_or(String::new(), |s| {
        s.epoch
            .map_or(String::new(), |e| format!(" · {} {e}", s.epoch_name))
    });
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(format!(" {}, live{epoch} ", v.technology))),
        area,
    );
}

fn draw_counters(f: &mut Frame, app: &App, v: &FailoverView, area: Rect) {
    let t = &app.theme;
    let tally = v.tally();
    let big =
        |n: String, c: Color| Span::styled(n, Style::new().fg(c).add_modifier(Modifier::BOLD));
    let lost = v
        .finished
        .as_ref()
        .and_then(|d| d.lost)
        .map_or("—".to_string(), |n| n.to_string());
    let lost_colour = match v.finished.as_ref().and_then(|d| d.lost) {
        Some(0) => t.ok,
        Some(_) => t.bad,
        None => t.muted,
    };
    let gap_colour = if tally.gap_now_ms > 1_000.0 {
        t.bad
    } else {
        t.ok
    };
    let mut lines = vec![
        Line::from(vec![
            Span::raw(" ok "),
            big(tally.ok.to_string(), t.ok),
            Span::raw("   fail "),
            big(
                tally.fail.to_string(),
                if tally.fail > 0 { t.bad } else { t.muted },
            ),
            Span::raw("   unknown "),
            big(
                tally.unknown.to_string(),
                if tally.unknown > 0 { t.warn } else { t.muted },
            ),
            Span::raw("   lost "),
            big(lost, lost_colour),
        ]),
        Line::from(vec![
            Span::raw(" no write acknowledged for "),
            big(secs(tally.gap_now_ms), gap_colour),
            Span::raw(format!(" · longest gap {}", secs(tally.longest_gap_ms))),
        ]),
    ];
    let mut facts = Vec::new();
    if let Some(d) = v.detected_ms {
        facts.push(format!("noticed after {}", secs(d)));
    }
    match (&v.new_leader, v.injected_ms) {
        (Some((at, l)), Some(i)) => facts.push(format!("new leader {l} after {}", secs(at - i))),
        (None, Some(i)) if v.healed_ms.is_none() => {
            facts.push(format!("no new leader yet ({})", secs(v.now_ms - i)))
        }
        _ => {}
    }
    if !facts.is_empty() {
        lines.push(Line::raw(format!(" {}", facts.join(" · "))));
    }
    if let (Some(r), Some(h)) = (v.rejoined_ms, v.healed_ms) {
        lines.push(Line::raw(format!(
            " healed; {} back after {}",
            v.target.as_deref().unwrap_or("the old leader"),
            secs(r - h)
        )));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" writes, one in flight at a time ")),
        area,
    );
}

/// A label step (ms) so that axis labels stay at least 8 cells apart.
fn axis_step(cell_ms: f64) -> f64 {
    [1, 2, 5, 10, 15, 30, 60, 120, 300, 600]
        .iter()
        .map(|s| *s as f64 * 1000.0)
        .find(|s| s / cell_ms >= 8.0)
        .unwrap_or(600_000.0)
}

fn draw_strip(f: &mut Frame, app: &App, v: &FailoverView, area: Rect) {
    let t = &app.theme;
    let block = Block::bordered().title(
        " writes over time: █ acknowledged  ✕ failed  ? unknown  · none · F fault  L new leader  H healed  R old leader back ",
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = inner.width as usize;
    if width == 0 || inner.height < 3 {
        return;
    }
    // The whole run fits: at least 30 s, and room to grow.
    let span = (v.now_ms * 1.15).max(30_000.0);
    let span = (span / 10_000.0).ceil() * 10_000.0;
    let cell_ms = span / width as f64;
    let cell = |ms: f64| ((ms / cell_ms) as usize).min(width - 1);
    // 0: nothing, 1: failed, 2: unknown, 3: acknowledged (the best outcome wins a cell).
    let mut cells = vec![0u8; width];
    for o in &v.ops {
        let rank = match o.outcome {
            Outcome::Ok => 3,
            Outcome::Unknown => 2,
            Outcome::Fail => 1,
        };
        let c = &mut cells[cell(o.end_ms)];
        *c = (*c).max(rank);
    }
    let first = v.ops.first().map(|o| cell(o.start_ms));
    // Once the workload stopped, nothing after its last write is a gap.
    let now = match (&v.finished, v.ops.last()) {
        (Some(_), Some(last)) => cell(last.end_ms),
        _ => cell(v.now_ms),
    };
    let spans: Vec<Span> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            3 => Span::styled("█", Style::new().fg(t.ok)),
            2 => Span::styled("?", Style::new().fg(t.warn).add_modifier(Modifier::BOLD)),
            1 => Span::styled("✕", Style::new().fg(t.bad).add_modifier(Modifier::BOLD)),
            _ if first.is_some_and(|s| i >= s) && i <= now => {
                Span::styled("·", Style::new().fg(t.bad))
            }
            _ => Span::raw(" "),
        })
        .collect();
    let mut marks = vec![Span::raw(" "); width];
    for (at, letter, colour) in [
        (v.injected_ms, "F", t.bad),
        (v.new_leader.as_ref().map(|l| l.0), "L", t.ok),
        (v.healed_ms, "H", t.accent),
        (v.rejoined_ms, "R", t.ok),
    ] {
        if let Some(at) = at {
            marks[cell(at)] = Span::styled(
                letter,
                Style::new()
                    .fg(colour)
                    .add_modifier(Modifier::BOLD | Modifier::REVERSED),
            );
        }
    }
    let step = axis_step(cell_ms);
    let mut axis = vec![' '; width];
    let mut tick = 0.0;
    while tick < span {
        let label = format!("{}s", (tick / 1000.0) as u64);
        let at = cell(tick);
        if at + label.len() <= width {
            for (k, ch) in label.chars().enumerate() {
                axis[at + k] = ch;
            }
        }
        tick += step;
    }
    let lines = vec![
        Line::from(spans),
        Line::from(marks),
        Line::styled(
            axis.into_iter().collect::<String>(),
            Style::new().fg(t.muted),
        ),
    ];
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_timeline(f: &mut Frame, app: &App, v: &FailoverView, area: Rect) {
    let t = &app.theme;
    let rows = area.height.saturating_sub(2) as usize;
    let skip = v.events.len().saturating_sub(rows);
    let lines: Vec<Line> = v
        .events
        .iter()
        .skip(skip)
        .map(|e| {
            let colour = if e.what.contains("injected") || e.what.starts_with("stopped") {
                t.bad
            } else if e.what.contains("healed") || e.what.contains(" again") {
                t.ok
            } else if e.what.starts_with("leader:") {
                t.accent
            } else {
                t.text
            };
            Line::from(vec![
                Span::styled(
                    format!(" {:>7.2} s  ", e.at_ms / 1000.0),
                    Style::new().fg(t.muted),
                ),
                Span::styled(e.what.clone(), Style::new().fg(colour)),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" timeline ")),
        area,
    );
}

fn draw_verdict(f: &mut Frame, app: &App, v: &FailoverView, area: Rect) {
    let (text, colour, title) = verdict_text(app, v);
    f.render_widget(
        Paragraph::new(Line::styled(
            format!(" {text}"),
            Style::new().fg(colour).add_modifier(Modifier::BOLD),
        ))
        .wrap(Wrap { trim: false })
        .block(
            Block::bordered()
                .border_style(Style::new().fg(colour))
                .title(title),
        ),
        area,
    );
}

/// The verdict line, its colour and its box's title.
fn verdict_text(app: &App, v: &FailoverView) -> (String, Color, String) {
    let t = &app.theme;
    match &v.finished {
        Some(d) => (
            d.verdict.clone(),
            if d.good { t.ok } else { t.bad },
            match &d.report {
                Ok(p) => format!(" verdict · report {} ", p.display()),
                Err(e) => format!(" verdict · the report could not be written: {e} "),
            },
        ),
        None if v.stopping => (
            "stopping: the fault is being healed, then every write is read back".into(),
            t.warn,
            " verdict ".into(),
        ),
        None => (
            "running… Esc stops the test: the fault is healed at once".into(),
            t.muted,
            " verdict ".into(),
        ),
    }
}

/// The picker: one row per choice, ←/→ changes it.
pub fn draw_picker(f: &mut Frame, app: &App, area: Rect) {
    let Some(p) = &app.picker else {
        return;
    };
    let t = &app.theme;
    let leader = p.leader.as_deref().unwrap_or("unknown yet");
    let target = match p.targets[p.target].as_str() {
        "leader" => format!("the leader ({leader})"),
        host => host.to_string(),
    };
    let rows = [
        ("fault", p.faults[p.fault].name().to_string()),
        ("target", target),
        ("force", if p.force { "yes" } else { "no" }.to_string()),
    ];
    let mut lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .map(|(i, (name, value))| {
            let chosen = i == p.row;
            Line::from(vec![
                Span::raw(format!(" {name:>7}  ")),
                Span::styled(
                    format!("◀ {value} ▶"),
                    if chosen {
                        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
                    } else {
                        Style::new()
                    },
                ),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    if p.preflight.is_empty() {
        lines.push(Line::styled(
            " preflight: nothing critical, it should fail over",
            Style::new().fg(t.ok),
        ));
    } else {
        lines.push(Line::styled(
            " preflight: it should NOT fail over:",
            Style::new().fg(t.bad).add_modifier(Modifier::BOLD),
        ));
        for w in &p.preflight {
            lines.push(Line::styled(format!("   {w}"), Style::new().fg(t.bad)));
        }
        lines.push(Line::raw(
            " (force: yes runs it anyway, to show exactly that)",
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " ↑/↓ choose · ←/→ change · ⏎ confirm · Esc cancel",
        Style::new().fg(t.muted),
    ));
    let width = lines.iter().map(|l| l.width()).max().unwrap_or(40) as u16 + 4;
    let popup = super::view::centred(area, width.max(50), lines.len() as u16 + 2);
    f.render_widget(ratatui::widgets::Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_style(Style::new().fg(t.accent))
                .title(format!(" failover test on {} ", p.cluster)),
        ),
        popup,
    );
}
