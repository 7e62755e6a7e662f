//! Drawing: header, clusters list, grid, bottom pane, bottom line, popups. Reads the App and
//! records where things were drawn (for the mouse and row moves); changes nothing else.

use super::app::App;
use super::input::COMMANDS;
use super::keys::Context;
use super::{grid, panes};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};

pub fn draw(f: &mut Frame, app: &mut App, clock: &str) {
    f.render_widget(Block::new().style(app.theme.base()), f.area());
    let [header, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, app, header, clock);
    app.layout.tiles.clear();
    app.layout.pane = Rect::default();
    app.layout.groups = Rect::default();
    if app.focus == Context::Failover && app.failover.is_some() {
        super::failview::draw(f, app, body);
    } else if app.fullscreen {
        if app.focus == Context::Pane {
            panes::draw(f, app, body);
        } else {
            draw_grid(f, app, body);
        }
    } else {
        let list_w = app
            .groups
            .iter()
            .map(|g| g.name.len() as u16 + 12)
            .max()
            .unwrap_or(20)
            .min(body.width / 3);
        let [left, right] =
            Layout::horizontal([Constraint::Length(list_w), Constraint::Min(10)]).areas(body);
        draw_groups(f, app, left);
        if app.pane_open {
            let [top, pane] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(right);
            draw_grid(f, app, top);
            panes::draw(f, app, pane);
        } else {
            draw_grid(f, app, right);
        }
    }
    draw_bottom(f, app, bottom);
    if app.show_help {
        draw_help(f, app, body);
    }
    if app.picker.is_some() {
        super::failview::draw_picker(f, app, body);
    }
    if app.confirm.is_some() {
        draw_confirm(f, app, body);
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect, clock: &str) {
    let t = &app.theme;
    let (up, down, unknown) = app.counts(app.fleet.hosts.iter().map(|h| &h.hostname));
    let file = app.fleet.source.file_name().map_or_else(
        || app.fleet.source.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut spans = vec![
        Span::styled(
            " kbz ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(" "),
        Span::styled(format!(" ENV {} ", app.fleet.env), t.env_badge()),
    ];
    if app.readonly {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            " READONLY ",
            Style::new()
                .fg(t.warn)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    spans.extend([
        Span::raw(format!(" {file} · ")),
        Span::styled(format!("{up} up"), Style::new().fg(t.ok)),
        Span::raw(" · "),
        Span::styled(
            format!("{down} down"),
            Style::new().fg(if down > 0 { t.bad } else { t.muted }),
        ),
        Span::raw(" · "),
        Span::styled(format!("{unknown} unknown"), Style::new().fg(t.muted)),
    ]);
    if !app.marked.is_empty() {
        spans.push(Span::styled(
            format!(" · {} marked", app.marked.len()),
            Style::new().fg(t.accent),
        ));
    }
    spans.push(Span::raw(format!(" · {clock}")));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_groups(f: &mut Frame, app: &mut App, area: Rect) {
    let t = &app.theme;
    let items: Vec<ListItem> = app
        .groups
        .iter()
        .map(|g| {
            let (up, down, _) = app.counts(&g.hosts);
            let colour = if down > 0 {
                t.bad
            } else if up == g.hosts.len() {
                t.ok
            } else {
                t.muted
            };
            ListItem::new(Line::from(vec![
                Span::styled("● ", Style::new().fg(colour)),
                Span::raw(g.name.clone()),
                Span::styled(format!(" {up}/{}", g.hosts.len()), Style::new().fg(t.muted)),
            ]))
        })
        .collect();
    let list = List::new(items)
        .block(Block::bordered().title(" clusters "))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default().with_selected(Some(app.group));
    f.render_stateful_widget(list, area, &mut state);
    app.layout.groups = area;
    app.layout.groups_offset = state.offset();
}

fn draw_grid(f: &mut Frame, app: &mut App, area: Rect) {
    let Some(group) = app.groups.get(app.group) else {
        return;
    };
    let hosts = app.selected_hosts().len();
    let filter = match &app.filter {
        Some(fl) => match fl.error() {
            Some(e) => format!(" · /{} (not a regex: {e})", fl.text),
            None => format!(" · /{} · {hosts} of {} hosts", fl.text, group.hosts.len()),
        },
        None => String::new(),
    };
    let mut title = vec![Span::raw(format!(
        " {} · {}{filter} ",
        group.name, group.label
    ))];
    title.extend(grid::cluster_spans(app, &group.name));
    // A cluster's warnings, each with its fix, above its hosts.
    let warnings: Vec<Line> = match app.clusters.get(&group.name) {
        Some(Ok(s)) => s
            .warnings
            .iter()
            .map(|w| {
                let colour = match w.severity {
                    crate::probe::Severity::Critical => app.theme.bad,
                    crate::probe::Severity::Warning => app.theme.warn,
                };
                Line::from(vec![
                    Span::styled(
                        format!("⚠ {}: ", w.what),
                        Style::new().fg(colour).add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(format!("{}. ", w.why)),
                    Span::styled(format!("Fix: {}", w.fix), Style::new().fg(app.theme.accent)),
                ])
            })
            .collect(),
        _ => Vec::new(),
    };
    let area = if warnings.is_empty() {
        area
    } else {
        let width = area.width.max(1) as usize;
        let rows: usize = warnings
            .iter()
            .map(|l| l.width().div_ceil(width).max(1))
            .sum();
        let h = (rows as u16).min(area.height / 3);
        let [top, rest] = Layout::vertical([Constraint::Length(h), Constraint::Min(3)]).areas(area);
        f.render_widget(
            Paragraph::new(warnings).wrap(ratatui::widgets::Wrap { trim: false }),
            top,
        );
        rest
    };
    grid::draw(f, app, area, Line::from(title));
}

/// The prompt being typed, else the last command's answer, else the hints of the focused view.
fn draw_bottom(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let line = if let Some(p) = &app.prompt {
        Line::from(vec![
            Span::styled(
                p.kind.sigil(),
                Style::new().fg(t.accent).add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{}▏", p.text)),
        ])
    } else if let Some(s) = &app.status {
        Line::styled(format!(" {s}"), Style::new().fg(t.warn))
    } else {
        let mut spans = Vec::new();
        for b in app.keymap.active(app.focus).filter(|b| b.hint) {
            let Some(label) = app.keymap.hint_label(b, app.focus) else {
                continue;
            };
            let greyed = app.readonly && b.dangerous;
            let key_style = if greyed {
                Style::new().fg(t.muted).add_modifier(Modifier::CROSSED_OUT)
            } else {
                Style::new().add_modifier(Modifier::REVERSED)
            };
            spans.push(Span::styled(format!(" {label} "), key_style));
            let help = b.help.split(" (").next().unwrap_or(b.help);
            spans.push(Span::styled(
                format!(" {help}  "),
                if greyed {
                    Style::new().fg(t.muted)
                } else {
                    Style::new()
                },
            ));
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(line), area);
}

pub(super) fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let (w, h) = (width.min(area.width), height.min(area.height));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn draw_help(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let section = |name: &str| {
        Line::styled(
            name.to_string(),
            Style::new().fg(t.accent).add_modifier(Modifier::BOLD),
        )
    };
    let mut columns: [Vec<Line>; 2] = [Vec::new(), Vec::new()];
    for (col, ctx, name) in [
        (0, Context::Global, "everywhere"),
        (0, Context::Grid, "grid"),
        (1, Context::Pane, "panes"),
        (1, Context::Failover, "failover view"),
    ] {
        columns[col].push(section(name));
        for b in app.keymap.bindings.iter().filter(|b| b.context == ctx) {
            let greyed = app.readonly && b.dangerous;
            columns[col].push(Line::from(vec![
                Span::styled(
                    format!("{:>9}  ", b.label()),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::styled(
                    b.help,
                    if greyed {
                        Style::new().fg(t.muted)
                    } else {
                        Style::new()
                    },
                ),
            ]));
        }
    }
    columns[1].push(section(": commands"));
    for (c, what) in COMMANDS {
        columns[1].push(Line::from(vec![
            Span::styled(
                format!(" :{c}  "),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(*what),
        ]));
    }
    let height = columns.iter().map(Vec::len).max().unwrap_or(0) as u16 + 2;
    let popup = centred(area, 130, height);
    f.render_widget(Clear, popup);
    let block = Block::bordered().title(" keys · ? or Esc closes ");
    let inner = block.inner(popup);
    f.render_widget(block, popup);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    let [a, b] = columns;
    f.render_widget(Paragraph::new(a), left);
    f.render_widget(Paragraph::new(b), right);
}

fn draw_confirm(f: &mut Frame, app: &App, area: Rect) {
    let Some(c) = &app.confirm else {
        return;
    };
    let t = &app.theme;
    let mut lines: Vec<Line> = c.body.iter().map(|l| Line::raw(l.clone())).collect();
    lines.push(Line::raw(""));
    lines.push(match &c.typed {
        None => Line::from(vec![
            Span::styled(" y ", Style::new().add_modifier(Modifier::REVERSED)),
            Span::raw(" do it   "),
            Span::styled(" n / Esc ", Style::new().add_modifier(Modifier::REVERSED)),
            Span::raw(" cancel"),
        ]),
        Some(name) => Line::from(vec![
            Span::styled(
                format!(
                    "ENV {}: type {name} and ⏎ to confirm, Esc cancels: ",
                    app.fleet.env
                ),
                Style::new().fg(t.bad).add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{}▏", c.input)),
        ]),
    });
    let width = lines.iter().map(|l| l.width()).max().unwrap_or(20) as u16 + 4;
    let popup = centred(area, width.max(40), lines.len() as u16 + 2);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_style(Style::new().fg(t.bad))
                .title(format!(" {} ", c.title)),
        ),
        popup,
    );
}
