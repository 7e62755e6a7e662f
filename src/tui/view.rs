//! Drawing: header, clusters list, host grid, hint bar, help. Reads the App, changes nothing
//! but the grid's column count (needed to move up and down rows).

use super::app::App;
use super::keys::BINDINGS;
use crate::ssh::ConnState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};

const TILE_W: u16 = 26;
const TILE_H: u16 = 5;

pub fn draw(f: &mut Frame, app: &mut App, clock: &str) {
    let [header, body, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, app, header, clock);
    let list_w = app
        .groups
        .iter()
        .map(|g| g.name.len() as u16 + 12)
        .max()
        .unwrap_or(20)
        .min(body.width / 3);
    let [left, grid] =
        Layout::horizontal([Constraint::Length(list_w), Constraint::Min(10)]).areas(body);
    draw_groups(f, app, left);
    if app.logs.is_some() {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(grid);
        draw_grid(f, app, top);
        draw_logs(f, app, bottom);
    } else {
        draw_grid(f, app, grid);
    }
    draw_hints(f, hints);
    if app.show_help {
        draw_help(f, body);
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect, clock: &str) {
    let (up, down, unknown) = app.counts(app.fleet.hosts.iter().map(|h| &h.hostname));
    let file = app.fleet.source.file_name().map_or_else(
        || app.fleet.source.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let line = Line::from(vec![
        Span::styled(
            " kbz ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!(" {file} · ENV {} · ", app.fleet.env)),
        Span::styled(format!("{up} up"), Style::new().fg(Color::Green)),
        Span::raw(" · "),
        Span::styled(
            format!("{down} down"),
            Style::new().fg(if down > 0 {
                Color::Red
            } else {
                Color::DarkGray
            }),
        ),
        Span::raw(" · "),
        Span::styled(
            format!("{unknown} unknown"),
            Style::new().fg(Color::DarkGray),
        ),
        Span::raw(format!(" · {clock}")),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn draw_groups(f: &mut Frame, app: &App, area: Rect) {
    let items: Vec<ListItem> = app
        .groups
        .iter()
        .map(|g| {
            let (up, down, _) = app.counts(&g.hosts);
            let colour = if down > 0 {
                Color::Red
            } else if up == g.hosts.len() {
                Color::Green
            } else {
                Color::DarkGray
            };
            ListItem::new(Line::from(vec![
                Span::styled("● ", Style::new().fg(colour)),
                Span::raw(g.name.clone()),
                Span::styled(
                    format!(" {up}/{}", g.hosts.len()),
                    Style::new().fg(Color::DarkGray),
                ),
            ]))
        })
        .collect();
    let list = List::new(items)
        .block(Block::bordered().title(" clusters "))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default().with_selected(Some(app.group));
    f.render_stateful_widget(list, area, &mut state);
}

/// Colour and one-line text of a connection state.
fn describe(state: &ConnState) -> (Color, String) {
    match state {
        ConnState::Idle => (Color::DarkGray, "not connected".into()),
        ConnState::Connecting => (Color::Yellow, "connecting…".into()),
        ConnState::Up { rtt_ms } => (Color::Green, format!("up {rtt_ms:.1} ms")),
        ConnState::Down { reason } => (Color::Red, format!("down: {reason}")),
        ConnState::AuthFailed { .. } => (Color::Magenta, "auth failed".into()),
        ConnState::HostKeyUnknown { .. } => (Color::Magenta, "host key unknown".into()),
        ConnState::HostKeyChanged { .. } => (Color::Magenta, "HOST KEY CHANGED".into()),
        ConnState::HostKeyRevoked { .. } => (Color::Magenta, "host key revoked".into()),
        ConnState::HostKeyBadCertificate { .. } => (Color::Magenta, "bad host certificate".into()),
    }
}

fn draw_grid(f: &mut Frame, app: &mut App, area: Rect) {
    let Some(group) = app.groups.get(app.group) else {
        return;
    };
    let hosts = app.selected_hosts();
    let filter = match (&app.input, &app.filter) {
        (Some(typing), _) => format!(" · /{typing}▏"),
        (None, Some(f)) => match f.error() {
            Some(e) => format!(" · /{} (not a regex: {e})", f.text),
            None => format!(
                " · /{} · {} of {} hosts",
                f.text,
                hosts.len(),
                group.hosts.len()
            ),
        },
        (None, None) => String::new(),
    };
    let block = Block::bordered().title(format!(" {} · {}{filter} ", group.name, group.label));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let columns = (inner.width / TILE_W).max(1) as usize;
    let rows_visible = (inner.height / TILE_H).max(1) as usize;
    app.columns = columns;
    let selected_row = app.host / columns;
    let first_row = selected_row.saturating_sub(rows_visible - 1);
    for (i, name) in hosts
        .iter()
        .enumerate()
        .skip(first_row * columns)
        .take(rows_visible * columns)
    {
        let row = (i / columns - first_row) as u16;
        let col = (i % columns) as u16;
        let tile = Rect::new(
            inner.x + col * TILE_W,
            inner.y + row * TILE_H,
            TILE_W.min(inner.width),
            TILE_H,
        );
        let (colour, text) = describe(app.state(name));
        let host = app.fleet.host(name);
        let mut border = Style::new().fg(colour);
        if i == app.host {
            border = border.add_modifier(Modifier::BOLD | Modifier::REVERSED);
        }
        let lines = vec![
            Line::from(host.map(|h| h.ip_private.to_string()).unwrap_or_default()),
            Line::styled(text, Style::new().fg(colour)),
            Line::styled(
                host.map(|h| h.subrole.clone()).unwrap_or_default(),
                Style::new().fg(Color::DarkGray),
            ),
        ];
        let p = Paragraph::new(lines).block(
            Block::bordered()
                .border_style(border)
                .title(format!(" {name} ")),
        );
        f.render_widget(p, tile);
    }
}

fn draw_logs(f: &mut Frame, app: &App, area: Rect) {
    let Some(pane) = &app.logs else {
        return;
    };
    let (status, style) = match &pane.trouble {
        None => ("following".to_string(), Style::new().fg(Color::Green)),
        Some(t) => (
            t.clone(),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    };
    let title = Line::from(vec![
        Span::raw(format!(" logs · {} · journal · ", pane.host)),
        Span::styled(status, style),
        Span::raw(format!(
            " · {} lines · {} dropped ",
            pane.lines.len(),
            pane.dropped
        )),
    ]);
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    let visible = inner.height as usize;
    let lines: Vec<Line> = pane
        .lines
        .iter()
        .skip(pane.lines.len().saturating_sub(visible))
        .map(|l| Line::raw(l.clone()))
        .collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_hints(f: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    for b in BINDINGS.iter().filter(|b| b.hint) {
        spans.push(Span::styled(
            format!(" {} ", b.label),
            Style::new().add_modifier(Modifier::REVERSED),
        ));
        spans.push(Span::raw(format!(" {}  ", b.help)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_help(f: &mut Frame, area: Rect) {
    let width = 50.min(area.width);
    let height = (BINDINGS.len() as u16 + 2).min(area.height);
    let popup = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    let lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(
                    format!("{:>8}  ", b.label),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(b.help),
            ])
        })
        .collect();
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys ")),
        popup,
    );
}
