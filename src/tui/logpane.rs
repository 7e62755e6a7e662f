//! The log pane's model: one ring buffer per host (a chatty host cannot push a quiet one's
//! lines out), the merged arrival order over them, the line filter, the search and the scroll
//! position. Ingest is O(1) per line and never waits for the screen.

use crate::engine::logs::LogEvent;
use regex::Regex;
use std::collections::VecDeque;

/// Lines each host keeps; older ones are dropped and counted.
pub const LOG_CAPACITY: usize = 10_000;

/// One host's stream.
pub struct HostLog {
    pub host: String,
    /// Boxed: no spare capacity and 8 bytes less per line than a String.
    lines: VecDeque<Box<str>>,
    /// Sequence number of `lines[0]` (numbers count every line this host ever sent).
    first: u64,
    pub dropped: u64,
    /// `None` while streaming; otherwise why not (connecting, lost, ended).
    pub trouble: Option<String>,
}

impl HostLog {
    fn new(host: &str) -> HostLog {
        HostLog {
            host: host.to_string(),
            lines: VecDeque::new(),
            first: 0,
            dropped: 0,
            trouble: Some("connecting…".into()),
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn get(&self, seq: u64) -> Option<&str> {
        let i = seq.checked_sub(self.first)?;
        self.lines.get(i as usize).map(|l| &**l)
    }

    /// The newest lines passing `keep`, oldest first, at most `n`.
    pub fn tail(&self, n: usize, keep: impl Fn(&str) -> bool) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .lines
            .iter()
            .rev()
            .map(|l| &**l)
            .filter(|l| keep(l))
            .take(n)
            .collect();
        out.reverse();
        out
    }
}

/// A regex typed by the operator; `!` in front inverts it (for the line filter).
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    pub invert: bool,
    pub regex: Regex,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Pattern, String> {
        let (invert, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let regex = regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Pattern {
            text: text.to_string(),
            invert,
            regex,
        })
    }

    pub fn keeps(&self, line: &str) -> bool {
        self.regex.is_match(line) != self.invert
    }
}

/// Line references in display order, and how many were removed from the front (so that
/// positions stay stable while the index moves).
#[derive(Default)]
struct Index {
    entries: VecDeque<(u16, u64)>,
    base: u64,
}

impl Index {
    fn end(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// Drops dead entries (lines that left their ring) from the front, and compacts when
    /// dead ones pile up in the middle (a chatty host next to a quiet one).
    fn sweep(&mut self, hosts: &[HostLog]) -> bool {
        let live = |&(h, s): &(u16, u64)| hosts.get(h as usize).and_then(|x| x.get(s)).is_some();
        while let Some(front) = self.entries.front() {
            if live(front) {
                break;
            }
            self.entries.pop_front();
            self.base += 1;
        }
        if self.entries.len() > 2 * LOG_CAPACITY * hosts.len().max(1) {
            self.entries.retain(live);
            // Positions from before no longer mean the same lines: start a new numbering.
            self.base += 2 * LOG_CAPACITY as u64 * hosts.len().max(1) as u64;
            return true;
        }
        false
    }
}

pub struct LogPane {
    /// What is followed: "journal", "unit nginx", "file /var/log/x".
    pub source: String,
    pub hosts: Vec<HostLog>,
    /// Every line in arrival order.
    order: Index,
    /// The lines passing the filter, when there is one.
    filtered: Option<Index>,
    pub filter: Option<Pattern>,
    pub search: Option<Pattern>,
    /// Absolute position just past the last line shown; `None` follows the newest line.
    pub paused_at: Option<u64>,
    pub wrap: bool,
    pub timestamps: bool,
    pub hscroll: u16,
    /// Side by side instead of merged, when there are several hosts.
    pub split: bool,
    /// A one-line message for the operator (saved to..., no match...).
    pub notice: Option<String>,
    /// The position of the current search match.
    pub current: Option<u64>,
}

impl LogPane {
    pub fn new(hosts: &[String], source: &str) -> LogPane {
        LogPane {
            source: source.to_string(),
            hosts: hosts.iter().map(|h| HostLog::new(h)).collect(),
            order: Index::default(),
            filtered: None,
            filter: None,
            search: None,
            paused_at: None,
            wrap: false,
            timestamps: true,
            hscroll: 0,
            split: false,
            notice: None,
            current: None,
        }
    }

    pub fn title_hosts(&self) -> String {
        match self.hosts.as_slice() {
            [one] => one.host.clone(),
            many => format!("{} hosts", many.len()),
        }
    }

    pub fn dropped(&self) -> u64 {
        self.hosts.iter().map(|h| h.dropped).sum()
    }

    pub fn lines(&self) -> usize {
        self.hosts.iter().map(HostLog::len).sum()
    }

    pub fn on_event(&mut self, host: usize, event: LogEvent) {
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        let line = match event {
            LogEvent::Line(l) => {
                h.trouble = None;
                l
            }
            LogEvent::Warning(w) => format!("! {w}"),
            LogEvent::Lost(why) => {
                h.trouble = Some(format!("LOST — reconnecting ({why})"));
                return;
            }
            LogEvent::Resumed(_) => {
                h.trouble = None;
                return;
            }
            LogEvent::Ended(Ok(())) => {
                h.trouble = Some("ended".into());
                return;
            }
            LogEvent::Ended(Err(e)) => {
                h.trouble = Some(format!("ended: {e}"));
                return;
            }
        };
        if h.lines.len() == LOG_CAPACITY {
            h.lines.pop_front();
            h.first += 1;
            h.dropped += 1;
        }
        let entry = (host as u16, h.first + h.lines.len() as u64);
        if let (Some(f), Some(idx)) = (&self.filter, self.filtered.as_mut())
            && f.keeps(&line)
        {
            idx.entries.push_back(entry);
        }
        if h.lines.capacity() == 0 {
            // The ring fills up in a busy minute; growing it by doubling would leave up to
            // 60% of it unused for good.
            h.lines.reserve_exact(LOG_CAPACITY);
        }
        h.lines.push_back(line.into_boxed_str());
        self.order.entries.push_back(entry);
        let mut renumbered = self.order.sweep(&self.hosts);
        if let Some(idx) = self.filtered.as_mut() {
            renumbered |= idx.sweep(&self.hosts);
        }
        if renumbered {
            self.paused_at = None;
            self.current = None;
        }
    }

    fn index(&self) -> &Index {
        self.filtered.as_ref().unwrap_or(&self.order)
    }

    /// The absolute position just past the newest line shown.
    pub fn end(&self) -> u64 {
        self.index().end()
    }

    pub fn start(&self) -> u64 {
        self.index().base
    }

    /// The line at an absolute position, with its host index.
    pub fn at(&self, pos: u64) -> Option<(usize, &str)> {
        let idx = self.index();
        let e = *idx.entries.get(pos.checked_sub(idx.base)? as usize)?;
        let line = self.hosts.get(e.0 as usize)?.get(e.1)?;
        Some((e.0 as usize, line))
    }

    /// The bottom of what is shown.
    pub fn bottom(&self) -> u64 {
        self.paused_at
            .map_or(self.end(), |p| p.clamp(self.start(), self.end()))
    }

    /// Up to `n` lines ending at the bottom of the view: (position, host, text).
    pub fn window(&self, n: usize) -> Vec<(u64, usize, &str)> {
        let mut out = Vec::with_capacity(n);
        let mut pos = self.bottom();
        while out.len() < n && pos > self.start() {
            pos -= 1;
            if let Some((h, l)) = self.at(pos) {
                out.push((pos, h, l));
            }
        }
        out.reverse();
        out
    }

    pub fn set_filter(&mut self, pattern: Option<Pattern>) {
        self.filtered = pattern.as_ref().map(|f| Index {
            entries: self
                .order
                .entries
                .iter()
                .filter(|&&(h, s)| {
                    self.hosts
                        .get(h as usize)
                        .and_then(|x| x.get(s))
                        .is_some_and(|l| f.keeps(l))
                })
                .copied()
                .collect(),
            base: 0,
        });
        self.filter = pattern;
        self.paused_at = None;
        self.current = None;
    }

    pub fn scroll(&mut self, delta: i64) {
        let bottom = self.bottom() as i64 + delta;
        let min = (self.start() + 1).min(self.end()) as i64;
        let bottom = bottom.clamp(min, self.end() as i64) as u64;
        self.paused_at = (bottom < self.end()).then_some(bottom);
    }

    pub fn top(&mut self, height: usize) {
        self.paused_at = Some((self.start() + height as u64).min(self.end()));
    }

    pub fn follow(&mut self) {
        self.paused_at = None;
    }

    pub fn toggle_pause(&mut self) {
        self.paused_at = match self.paused_at {
            Some(_) => None,
            None => Some(self.end()),
        };
    }

    /// Moves to the next (or previous) line matching the search and shows it.
    pub fn find(&mut self, forward: bool, height: usize) {
        let Some(search) = self.search.clone() else {
            return;
        };
        let from = self.current.unwrap_or_else(|| {
            if forward {
                self.bottom().saturating_sub(height as u64)
            } else {
                self.bottom()
            }
        });
        let hit = if forward {
            (from + 1..self.end())
                .chain(self.start()..=from.min(self.end()))
                .find(|&p| self.at(p).is_some_and(|(_, l)| search.regex.is_match(l)))
        } else {
            (self.start()..from)
                .rev()
                .chain((from..self.end()).rev())
                .find(|&p| self.at(p).is_some_and(|(_, l)| search.regex.is_match(l)))
        };
        match hit {
            Some(p) => {
                self.current = Some(p);
                // Keep the match about a third up the pane, so what follows it shows too.
                let below = (height as u64 * 2 / 3).max(1);
                // Searching stops following, as in `less`: the match stays where it is.
                self.paused_at = Some((p + below).min(self.end()));
                self.notice = None;
            }
            None => self.notice = Some(format!("no line matches /{}", search.text)),
        }
    }

    /// Every line in view order, host-prefixed when there are several hosts (for saving).
    pub fn export(&self) -> Vec<String> {
        let multi = self.hosts.len() > 1;
        (self.start()..self.end())
            .filter_map(|p| self.at(p))
            .map(|(h, l)| {
                if multi {
                    format!("{} {l}", self.hosts[h].host)
                } else {
                    l.to_string()
                }
            })
            .collect()
    }
}

/// The journal's leading timestamp, for hiding it.
pub fn strip_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((first, rest))
            if first.len() >= 20 && first.as_bytes()[0].is_ascii_digit() && first.contains('T') =>
        {
            rest
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> LogEvent {
        LogEvent::Line(s.to_string())
    }

    #[test]
    fn per_host_rings_keep_a_quiet_host_next_to_a_chatty_one() {
        let mut p = LogPane::new(&["quiet".into(), "chatty".into()], "journal");
        p.on_event(0, line("the quiet host's only line"));
        for i in 0..(3 * LOG_CAPACITY) {
            p.on_event(1, line(&format!("chatter {i}")));
        }
        assert_eq!(p.hosts[0].len(), 1);
        assert_eq!(p.hosts[1].dropped, 2 * LOG_CAPACITY as u64);
        assert_eq!(p.export().len(), LOG_CAPACITY + 1);
        assert_eq!(p.export()[0], "quiet the quiet host's only line");
        assert_eq!(
            p.window(2).iter().map(|w| w.2).collect::<Vec<_>>(),
            [
                format!("chatter {}", 3 * LOG_CAPACITY - 2),
                format!("chatter {}", 3 * LOG_CAPACITY - 1)
            ]
        );
    }

    #[test]
    fn filter_search_pause_and_scroll() {
        let mut p = LogPane::new(&["h".into()], "journal");
        for i in 0..100 {
            p.on_event(
                0,
                line(&format!(
                    "line {i} {}",
                    if i % 10 == 0 { "ERROR" } else { "ok" }
                )),
            );
        }
        p.set_filter(Some(Pattern::new("error").unwrap()));
        assert_eq!(p.export().len(), 10);
        p.on_event(0, line("line 100 ERROR"));
        p.on_event(0, line("line 101 ok"));
        assert_eq!(p.export().len(), 11, "new lines are filtered as they come");
        p.set_filter(Some(Pattern::new("!error").unwrap()));
        assert_eq!(p.export().len(), 91);
        p.set_filter(None);
        assert_eq!(p.export().len(), 102);
        // Pause: new lines arrive, the window does not move.
        p.toggle_pause();
        let before: Vec<String> = p.window(5).iter().map(|w| w.2.to_string()).collect();
        p.on_event(0, line("line 102 ok"));
        let after: Vec<String> = p.window(5).iter().map(|w| w.2.to_string()).collect();
        assert_eq!(before, after);
        p.follow();
        assert_eq!(p.window(1)[0].2, "line 102 ok");
        // Search backwards from the bottom, then forwards wraps around.
        p.search = Some(Pattern::new("ERROR").unwrap());
        p.find(false, 10);
        assert_eq!(p.at(p.current.unwrap()).unwrap().1, "line 100 ERROR");
        p.find(false, 10);
        assert_eq!(p.at(p.current.unwrap()).unwrap().1, "line 90 ERROR");
        assert!(p.window(10).iter().any(|w| w.2 == "line 90 ERROR"), "shown");
        p.find(true, 10);
        p.find(true, 10);
        assert_eq!(p.at(p.current.unwrap()).unwrap().1, "line 0 ERROR", "wraps");
        p.search = Some(Pattern::new("nothing-like-this").unwrap());
        p.find(true, 10);
        assert_eq!(
            p.notice.as_deref(),
            Some("no line matches /nothing-like-this")
        );
        p.scroll(-1000);
        assert_eq!(
            p.window(1)[0].2,
            "line 0 ERROR",
            "scrolls to the oldest line"
        );
    }

    #[test]
    fn timestamps_strip_only_the_journal_stamp() {
        assert_eq!(
            strip_timestamp("2026-11-28T12:00:00.123Z sshd[1]: hello"),
            "sshd[1]: hello"
        );
        assert_eq!(strip_timestamp("plain file line"), "plain file line");
    }
}
