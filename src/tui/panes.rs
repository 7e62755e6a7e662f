//! The bottom pane's tabs: a host's (or several hosts') live log, the command log, and kbz's
//! own diagnostics.

use super::app::{App, Tab};
use super::keys::Context;
use super::logpane::{LogPane, Pattern, strip_timestamp};
use super::theme::Theme;
use crate::ssh::Exit;
use ansi_to_tui::IntoText;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

pub fn draw(f: &mut Frame, app: &mut App, area: Rect) {
    app.layout.pane = area;
    app.layout.pane_height = area.height.saturating_sub(2) as usize;
    let focused = app.focus == Context::Pane;
    let mut tabs = vec![Span::raw(" ")];
    for t in Tab::ALL {
        let style = if t == app.tab {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new().fg(app.theme.muted)
        };
        tabs.push(Span::styled(format!(" {} ", t.title()), style));
        tabs.push(Span::raw(" "));
    }
    let border = if focused {
        Style::new().fg(app.theme.accent)
    } else {
        Style::new()
    };
    let block = Block::bordered()
        .border_style(border)
        .title(Line::from(tabs));
    match app.tab {
        Tab::Logs => match &app.logs {
            Some(pane) => draw_logs(f, pane, &app.theme, block, area),
            None => f.render_widget(
                Paragraph::new(
                    " no log open: ⏎ on a host follows its journal, :logs unit U or file P",
                )
                .style(Style::new().fg(app.theme.muted))
                .block(block),
                area,
            ),
        },
        Tab::Commands => draw_commands(f, app, block, area),
        Tab::Modules => super::modview::draw(f, app, block, area),
        Tab::Diagnostics => super::diag::draw(f, &app.theme, block, area),
    }
}

fn status_of(pane: &LogPane, t: &Theme) -> Vec<Span<'static>> {
    let troubled: Vec<&str> = pane
        .hosts
        .iter()
        .filter_map(|h| h.trouble.as_deref())
        .collect();
    let bad = Style::new().fg(t.bad).add_modifier(Modifier::BOLD);
    let mut spans = Vec::new();
    match (pane.hosts.len(), troubled.as_slice()) {
        (_, []) if pane.paused_at.is_some() => {
            spans.push(Span::styled("PAUSED", Style::new().fg(t.warn)))
        }
        (_, []) => spans.push(Span::styled("following", Style::new().fg(t.ok))),
        (n, all) if all.len() == n && all.iter().all(|w| *w == "ended") => {
            spans.push(Span::styled("ended", Style::new().fg(t.muted)))
        }
        (1, [why]) => spans.push(Span::styled(why.to_string(), bad)),
        (n, some) => spans.push(Span::styled(
            format!("{} of {n} not streaming", some.len()),
            bad,
        )),
    }
    spans
}

fn draw_logs(f: &mut Frame, pane: &LogPane, t: &Theme, block: Block, area: Rect) {
    let mut title = vec![Span::raw(format!(
        " {} · {} · ",
        pane.title_hosts(),
        pane.source
    ))];
    title.extend(status_of(pane, t));
    title.push(Span::raw(format!(
        " · {} lines · {} dropped ",
        pane.lines(),
        pane.dropped()
    )));
    if let Some(p) = &pane.filter {
        title.push(Span::styled(
            format!("&{} ", p.text),
            Style::new().fg(t.accent),
        ));
    }
    if let Some(p) = &pane.search {
        title.push(Span::styled(
            format!("/{} ", p.text),
            Style::new().fg(t.accent),
        ));
    }
    if let Some(n) = &pane.notice {
        title.push(Span::styled(format!("· {n} "), Style::new().fg(t.warn)));
    }
    let block = block.title_bottom(Line::from(title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if pane.split && pane.hosts.len() > 1 {
        let shown = pane.hosts.len().min((inner.width / 30).max(1) as usize);
        let columns = Layout::horizontal(vec![Constraint::Fill(1); shown]).split(inner);
        for (i, col) in columns.iter().enumerate() {
            let h = &pane.hosts[i];
            let status = h.trouble.clone().unwrap_or_else(|| "following".into());
            let b = Block::bordered().title(format!(" {} · {status} ", h.host));
            let content = b.inner(*col);
            let lines: Vec<Line> = h
                .tail(content.height as usize, |l| {
                    pane.filter.as_ref().is_none_or(|p| p.keeps(l))
                })
                .into_iter()
                .map(|l| render_line(pane, t, None, l, false))
                .collect();
            f.render_widget(Paragraph::new(lines).block(b), *col);
        }
        return;
    }
    let height = inner.height as usize;
    let multi = pane.hosts.len() > 1;
    let width = pane.hosts.iter().map(|h| h.host.len()).max().unwrap_or(0);
    let mut out: Vec<Line> = Vec::with_capacity(height);
    for (pos, host, text) in pane.window(height).into_iter().rev() {
        let prefix = multi.then(|| {
            Span::styled(
                format!("{:width$} │ ", pane.hosts[host].host),
                Style::new().fg(host_colour(host, t)),
            )
        });
        let line = render_line(pane, t, prefix, text, pane.current == Some(pos));
        if pane.wrap {
            let mut parts = wrap(line, inner.width as usize);
            while let Some(p) = parts.pop() {
                out.push(p);
            }
        } else {
            out.push(line);
        }
        if out.len() >= height {
            break;
        }
    }
    out.truncate(height);
    out.reverse();
    let scroll = if pane.wrap { 0 } else { pane.hscroll };
    f.render_widget(Paragraph::new(out).scroll((0, scroll)), inner);
}

fn host_colour(i: usize, t: &Theme) -> Color {
    let palette = [t.accent, t.ok, t.warn, t.alert, t.text];
    palette[i % palette.len()]
}

/// One log line: ANSI colours rendered, the timestamp hidden on request, search matches
/// highlighted, the current match marked.
fn render_line<'a>(
    pane: &LogPane,
    t: &Theme,
    prefix: Option<Span<'a>>,
    text: &'a str,
    current: bool,
) -> Line<'a> {
    let text = if pane.timestamps {
        text
    } else {
        strip_timestamp(text)
    };
    let mut spans: Vec<Span> = prefix.into_iter().collect();
    let body: Vec<Span> = if text.contains('\x1b') {
        match text.as_bytes().into_text() {
            Ok(parsed) => parsed
                .lines
                .into_iter()
                .flat_map(|l| l.spans)
                .map(|s| Span::styled(s.content.into_owned(), s.style))
                .collect(),
            Err(_) => vec![Span::raw(text)],
        }
    } else {
        vec![Span::raw(text)]
    };
    match &pane.search {
        Some(p) => spans.extend(highlight(body, p, t.matched())),
        None => spans.extend(body),
    }
    let mut line = Line::from(spans);
    if current {
        line = line.style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    }
    line
}

/// Splits spans at the search's matches and styles the matched parts.
fn highlight<'a>(spans: Vec<Span<'a>>, p: &Pattern, style: Style) -> Vec<Span<'a>> {
    let full: String = spans.iter().map(|s| s.content.as_ref()).collect();
    let ranges: Vec<(usize, usize)> = p
        .regex
        .find_iter(&full)
        .map(|m| (m.start(), m.end()))
        .collect();
    if ranges.is_empty() {
        return spans;
    }
    let mut out = Vec::new();
    let mut offset = 0;
    for s in spans {
        let text = s.content.as_ref();
        let (start, end) = (offset, offset + text.len());
        let mut cut = start;
        for &(a, b) in ranges.iter().filter(|(a, b)| *b > start && *a < end) {
            let (a, b) = (a.max(start), b.min(end));
            if a > cut {
                out.push(Span::styled(
                    text[cut - start..a - start].to_string(),
                    s.style,
                ));
            }
            out.push(Span::styled(
                text[a - start..b - start].to_string(),
                s.style.patch(style),
            ));
            cut = b;
        }
        if cut < end {
            out.push(Span::styled(text[cut - start..].to_string(), s.style));
        }
        offset = end;
    }
    out
}

/// Hard wrap at `width` characters, as `less` does (words are not kept whole: log lines are
/// often one long token).
fn wrap(line: Line<'_>, width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut out = vec![Vec::new()];
    let mut used = 0;
    for s in line.spans {
        let mut chunk = String::new();
        for c in s.content.chars() {
            if used == width {
                if let Some(l) = out.last_mut() {
                    l.push(Span::styled(std::mem::take(&mut chunk), s.style));
                }
                out.push(Vec::new());
                used = 0;
            }
            chunk.push(c);
            used += 1;
        }
        if let Some(l) = out.last_mut() {
            l.push(Span::styled(chunk, s.style));
        }
    }
    out.into_iter()
        .map(|spans| Line::from(spans).style(line.style))
        .collect()
}

fn draw_commands(f: &mut Frame, app: &App, block: Block, area: Rect) {
    let t = &app.theme;
    let log = &app.commands;
    let block = block.title_bottom(format!(
        " {} commands · {} running ",
        log.entries.len(),
        log.running()
    ));
    let inner = block.inner(area);
    let height = inner.height as usize;
    let end = log.entries.len().saturating_sub(log.scroll);
    let start = end.saturating_sub(height);
    let width = log
        .entries
        .range(start..end)
        .map(|e| e.host.len())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = log
        .entries
        .range(start..end)
        .map(|e| {
            let stamp = crate::engine::logs::utc_at(e.at);
            let (outcome, colour) = match &e.end {
                None => ("running".to_string(), t.warn),
                Some((Exit::Code(0), d)) => (format!("exit 0 · {:.2} s", d.as_secs_f64()), t.ok),
                Some((Exit::Code(c), d)) => (format!("exit {c} · {:.2} s", d.as_secs_f64()), t.bad),
                Some((Exit::Signal(s), d)) => {
                    (format!("signal {s} · {:.2} s", d.as_secs_f64()), t.bad)
                }
                Some((Exit::Cancelled, d)) => {
                    (format!("cancelled · {:.2} s", d.as_secs_f64()), t.muted)
                }
                Some((Exit::Lost(why), _)) => (format!("lost: {why}"), t.bad),
            };
            Line::from(vec![
                Span::styled(
                    format!("{} ", stamp.get(11..19).unwrap_or(&stamp)),
                    Style::new().fg(t.muted),
                ),
                Span::styled(format!("{:width$} ", e.host), Style::new().fg(t.accent)),
                Span::styled(format!("{outcome:>22} "), Style::new().fg(colour)),
                Span::raw(e.command.clone()),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}
