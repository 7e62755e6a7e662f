//! The fleet grid: one tile per host, in sections per cluster when every host is shown. Tiles
//! shrink (full, compact, one line) until the hosts fit, then the grid scrolls to keep the
//! selected host in view. Only visible tiles are drawn, so a frame costs the screen's size,
//! not the fleet's.

use super::app::App;
use super::theme::Theme;
use crate::ssh::ConnState;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    Full,
    Compact,
    Mini,
}

impl Size {
    fn dims(self) -> (u16, u16) {
        match self {
            Size::Full => (26, 6),
            Size::Compact => (22, 3),
            Size::Mini => (34, 1),
        }
    }
}

enum Item {
    Header { y: u16, group: usize },
    Tile { y: u16, x: u16, index: usize },
}

/// Colour and one-line text of a connection state.
pub fn describe(state: &ConnState, t: &Theme) -> (Color, String) {
    match state {
        ConnState::Idle => (t.muted, "not connected".into()),
        ConnState::Connecting => (t.warn, "connecting…".into()),
        ConnState::Up { rtt_ms } => (t.ok, format!("up {rtt_ms:.1} ms")),
        ConnState::Down { reason } => (t.bad, format!("down: {reason}")),
        ConnState::AuthFailed { .. } => (t.alert, "auth failed".into()),
        ConnState::HostKeyUnknown { .. } => (t.alert, "host key unknown (a)".into()),
        ConnState::HostKeyChanged { .. } => (t.alert, "HOST KEY CHANGED".into()),
        ConnState::HostKeyRevoked { .. } => (t.alert, "host key revoked".into()),
        ConnState::HostKeyBadCertificate { .. } => (t.alert, "bad host certificate".into()),
    }
}

/// Consecutive hosts of one section: (its group, if sections are shown; first host; count).
type Run = (Option<usize>, usize, usize);

/// Cuts the host list into sections (cluster by cluster) in the "all" view; one run otherwise.
fn runs(app: &App, hosts: &[String]) -> Vec<Run> {
    if app.group != 0 || app.groups.len() <= 2 {
        return vec![(None, 0, hosts.len())];
    }
    let mut out: Vec<Run> = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let section = app.section_of.get(h).copied();
        match out.last_mut() {
            Some((s, _, n)) if *s == section => *n += 1,
            _ => out.push((section, i, 1)),
        }
    }
    out
}

fn height(runs: &[Run], size: Size, width: u16) -> usize {
    let (w, h) = size.dims();
    let columns = (width / w).max(1) as usize;
    runs.iter()
        .map(|(s, _, n)| usize::from(s.is_some()) + n.div_ceil(columns) * h as usize)
        .sum()
}

/// Items with virtual coordinates (rows from the top of the whole grid).
fn lay_out(runs: &[Run], size: Size, width: u16) -> Vec<Item> {
    let (w, h) = size.dims();
    let columns = (width / w).max(1) as usize;
    let mut items = Vec::new();
    let mut y: u16 = 0;
    for &(section, first, run) in runs {
        if let Some(group) = section {
            items.push(Item::Header { y, group });
            y = y.saturating_add(1);
        }
        for k in 0..run {
            items.push(Item::Tile {
                y: y.saturating_add((k / columns) as u16 * h),
                x: (k % columns) as u16 * w,
                index: first + k,
            });
        }
        y = y.saturating_add(run.div_ceil(columns) as u16 * h);
    }
    items
}

pub fn draw(f: &mut Frame, app: &mut App, area: Rect, title: Line) {
    let block =
        Block::bordered()
            .title(title)
            .border_style(if app.focus == super::keys::Context::Grid {
                Style::new().fg(app.theme.accent)
            } else {
                Style::new()
            });
    let inner = block.inner(area);
    f.render_widget(block, area);
    app.layout.grid = inner;
    app.layout.tiles.clear();
    let hosts = app.selected_hosts();
    let runs = runs(app, &hosts);
    let size = [Size::Full, Size::Compact]
        .into_iter()
        .find(|s| height(&runs, *s, inner.width) <= inner.height as usize)
        .unwrap_or(Size::Mini);
    let items = lay_out(&runs, size, inner.width);
    let (_, tile_h) = size.dims();
    // Scroll so that the selected tile is on screen.
    let selected_y = items
        .iter()
        .find_map(|it| match it {
            Item::Tile { y, index, .. } if *index == app.host => Some(*y),
            _ => None,
        })
        .unwrap_or(0);
    let offset = (selected_y + tile_h).saturating_sub(inner.height);
    for item in &items {
        match item {
            Item::Header { y, group } => {
                let Some(g) = app.groups.get(*group) else {
                    continue;
                };
                if *y < offset || *y >= offset + inner.height {
                    continue;
                }
                let (up, down, _) = app.counts(&g.hosts);
                let (text, hosts) = (format!("{} · {}", g.name, g.label), g.hosts.len());
                let colour = if down > 0 {
                    app.theme.bad
                } else {
                    app.theme.accent
                };
                let mut spans = vec![
                    Span::styled(format!("── {text} "), Style::new().fg(app.theme.accent)),
                    Span::styled(
                        format!("{up}/{hosts} up "),
                        Style::new().fg(colour).add_modifier(Modifier::BOLD),
                    ),
                ];
                spans.extend(cluster_spans(app, &g.name));
                spans.push(Span::styled(
                    "─".repeat(inner.width as usize),
                    Style::new().fg(app.theme.muted),
                ));
                let line = Line::from(spans);
                let r = Rect::new(inner.x, inner.y + (y - offset), inner.width, 1);
                f.render_widget(Paragraph::new(line), r);
            }
            Item::Tile { y, x, index } => {
                if *y < offset || *y + tile_h > offset + inner.height {
                    continue;
                }
                let (w, h) = size.dims();
                let r = Rect::new(inner.x + x, inner.y + (y - offset), w.min(inner.width), h);
                draw_tile(f, app, &hosts[*index], *index, size, r);
                app.layout.tiles.push((r, *index));
            }
        }
    }
}

/// What the probes say of a cluster, for its section header and the grid's title:
/// "· leader db-master-01 · survives 1 loss · timeline 1 · ⚠ 1".
pub fn cluster_spans<'a>(app: &App, cluster: &str) -> Vec<Span<'a>> {
    let t = &app.theme;
    match app.clusters.get(cluster) {
        Some(Ok(s)) => {
            let mut summary = s.summary();
            // The SSH count is already there; keep the cluster's own view of itself.
            if let Some((_, rest)) = summary.split_once(" · ") {
                summary = rest.to_string();
            }
            let colour = match s.worst() {
                Some(crate::probe::Severity::Critical) => t.bad,
                Some(crate::probe::Severity::Warning) => t.warn,
                None => t.ok,
            };
            let mut spans = vec![Span::styled(
                format!("· {summary} "),
                Style::new().fg(colour),
            )];
            if !s.warnings.is_empty() {
                spans.push(Span::styled(
                    format!("⚠ {} ", s.warnings.len()),
                    Style::new().fg(colour).add_modifier(Modifier::BOLD),
                ));
            }
            // The endpoints go through the load balancers: their checks belong here.
            if s.technology == crate::inventory::Technology::Haproxy {
                for e in &app.endpoints {
                    let text = match (e.ok, e.rtt_ms) {
                        (true, Some(ms)) => format!("· {} ✓ {ms:.1} ms ", e.name),
                        (true, None) => format!("· {} ✓ ", e.name),
                        (false, _) => format!("· {} ✗ {} ", e.name, e.detail),
                    };
                    let colour = if e.ok { t.ok } else { t.bad };
                    spans.push(Span::styled(text, Style::new().fg(colour)));
                }
            }
            spans
        }
        Some(Err(e)) => vec![Span::styled(
            format!("· probe: {e} "),
            Style::new().fg(t.bad),
        )],
        None => Vec::new(),
    }
}

fn draw_tile(f: &mut Frame, app: &App, name: &str, index: usize, size: Size, r: Rect) {
    let t = &app.theme;
    let (colour, text) = describe(app.state(name), t);
    let selected = index == app.host;
    let marked = app.marked.contains(name);
    let mark = if marked { "✓ " } else { "" };
    let host = app.fleet.host(name);
    let mut border = Style::new().fg(colour);
    if selected {
        border = border.add_modifier(Modifier::BOLD | Modifier::REVERSED);
    }
    match size {
        Size::Mini => {
            // Hundreds of these per frame on a big screen: written straight into the buffer,
            // without a Paragraph's layout work.
            let mut style = Style::new().fg(colour);
            if selected {
                style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            let line = Line::from(vec![
                Span::styled("● ", style),
                Span::styled(mark, style),
                Span::styled(name, style),
                Span::styled(" ", style),
                Span::styled(text, Style::new().fg(colour)),
            ]);
            f.buffer_mut()
                .set_line(r.x, r.y, &line, r.width.saturating_sub(1));
        }
        Size::Compact | Size::Full => {
            let mut lines = Vec::new();
            if size == Size::Full {
                lines.push(Line::from(
                    host.map(|h| h.ip_private.to_string()).unwrap_or_default(),
                ));
            }
            lines.push(Line::styled(text, Style::new().fg(colour)));
            if size == Size::Full {
                lines.push(match app.live_member(name) {
                    // The live role replaces the inventory's initial one.
                    Some(m) => {
                        let lag = m
                            .lag
                            .filter(|l| *l > 0)
                            .map(|l| format!(" · lag {l}"))
                            .unwrap_or_default();
                        let colour = if m.up { t.text } else { t.bad };
                        Line::styled(
                            format!("{} · {}{lag}", m.role, m.state),
                            Style::new().fg(colour).add_modifier(Modifier::BOLD),
                        )
                    }
                    None => Line::styled(
                        host.map(|h| h.subrole.clone()).unwrap_or_default(),
                        Style::new().fg(t.muted),
                    ),
                });
            }
            if size == Size::Full {
                lines.push(basics_line(app, name));
            }
            let p = Paragraph::new(lines).block(
                Block::bordered()
                    .border_style(border)
                    .title(format!(" {mark}{name} ")),
            );
            f.render_widget(p, r);
        }
    }
}

/// Load, memory and disk; or, when something is wrong, that instead.
fn basics_line<'a>(app: &App, name: &str) -> Line<'a> {
    let t = &app.theme;
    let Some(b) = app.basics.get(name) else {
        return Line::default();
    };
    let worst = b.warnings(name).into_iter().max_by_key(|w| w.severity);
    match worst {
        Some(w) => {
            let colour = match w.severity {
                crate::probe::Severity::Critical => t.bad,
                crate::probe::Severity::Warning => t.warn,
            };
            // A tile is 24 columns: the host is in its title, units are services.
            let what = w
                .what
                .strip_prefix(&format!("{name}: "))
                .unwrap_or(&w.what)
                .replace("failed units ", "failed: ")
                .replace("failed unit ", "failed: ")
                .replace(".service", "");
            Line::styled(format!("⚠ {what}"), Style::new().fg(colour))
        }
        None => Line::styled(b.summary(), Style::new().fg(t.muted)),
    }
}
