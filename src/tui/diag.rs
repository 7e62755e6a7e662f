//! kbz's own log, for the diagnostics tab: a `log::Log` that keeps the last records in memory.
//! Written here rather than taken from tui-logger, whose thread moves records every 10 ms
//! whether any came or not: 100 wake-ups a second, half of an idle console's own CPU.

use super::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// More than this is history nobody scrolls to in the console.
const KEEP: usize = 2000;

struct Record {
    at: SystemTime,
    level: log::Level,
    target: String,
    text: String,
}

struct Diagnostics {
    records: Mutex<VecDeque<Record>>,
}

static LOG: Diagnostics = Diagnostics {
    records: Mutex::new(VecDeque::new()),
};

impl log::Log for Diagnostics {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let record = Record {
            at: SystemTime::now(),
            level: r.level(),
            target: r.target().to_string(),
            text: r.args().to_string(),
        };
        if let Ok(mut records) = self.records.lock() {
            if records.len() == KEEP {
                records.pop_front();
            }
            records.push_back(record);
        }
    }

    fn flush(&self) {}
}

/// Keeps kbz's log from now on, at `level` and above (a second console in one process keeps
/// the first one's).
pub fn init(level: log::LevelFilter) {
    if log::set_logger(&LOG).is_ok() {
        log::set_max_level(level);
    }
}

/// The newest records that fit in `area`, oldest first, coloured by level.
pub fn draw(f: &mut Frame, t: &Theme, block: Block, area: Rect) {
    let height = block.inner(area).height as usize;
    let lines: Vec<Line> = match LOG.records.lock() {
        Ok(records) => records
            .iter()
            .skip(records.len().saturating_sub(height))
            .map(|r| {
                let colour = match r.level {
                    log::Level::Error => t.bad,
                    log::Level::Warn => t.warn,
                    log::Level::Info => t.text,
                    log::Level::Debug | log::Level::Trace => t.muted,
                };
                let stamp = crate::engine::logs::utc_at(r.at);
                Line::from(vec![
                    Span::styled(
                        format!("{} ", stamp.get(11..19).unwrap_or(&stamp)),
                        Style::new().fg(t.muted),
                    ),
                    Span::styled(format!("{:<5} ", r.level), Style::new().fg(colour)),
                    Span::styled(format!("{}: ", r.target), Style::new().fg(t.muted)),
                    Span::styled(r.text.clone(), Style::new().fg(colour)),
                ])
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    f.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    #[test]
    fn records_show_newest_last_within_the_pane() {
        init(log::LevelFilter::Info);
        for i in 0..30 {
            log::info!(target: "kbz::probe", "probe {i}");
        }
        log::warn!(target: "kbz::ssh", "redis-03: connection refused");
        log::debug!(target: "kbz::ssh", "not kept at info");
        let mut term = Terminal::new(TestBackend::new(80, 6)).unwrap();
        let theme = Theme::builtin();
        term.draw(|f| draw(f, &theme, Block::bordered(), f.area()))
            .unwrap();
        let screen: String = term
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(
            screen.contains("WARN  kbz::ssh: redis-03: connection refused"),
            "{screen}"
        );
        assert!(
            screen.contains("probe 29") && !screen.contains("probe 26"),
            "{screen}"
        );
        assert!(!screen.contains("not kept"), "{screen}");
    }
}
