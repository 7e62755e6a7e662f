//! The console's state and how actions and engine events change it. Pure: no terminal, no
//! I/O, so it can be driven by tests.

use super::keys::Action;
use crate::engine::logs::LogEvent;
use crate::inventory::Fleet;
use crate::ssh::{ConnEvent, ConnState};
use std::collections::{HashMap, VecDeque};

/// Lines a log pane keeps; older ones are dropped and counted.
pub const LOG_CAPACITY: usize = 10_000;

/// A host's live log in the bottom pane.
pub struct LogPane {
    pub host: String,
    pub lines: VecDeque<String>,
    pub dropped: u64,
    /// `None` while streaming; otherwise why not (connecting, lost, ended).
    pub trouble: Option<String>,
}

impl LogPane {
    pub fn new(host: &str) -> LogPane {
        LogPane {
            host: host.to_string(),
            lines: VecDeque::new(),
            dropped: 0,
            trouble: Some("connecting…".into()),
        }
    }

    pub fn on_event(&mut self, event: LogEvent) {
        match event {
            LogEvent::Line(l) => {
                self.trouble = None;
                if self.lines.len() == LOG_CAPACITY {
                    self.lines.pop_front();
                    self.dropped += 1;
                }
                self.lines.push_back(l);
            }
            LogEvent::Warning(w) => self.lines.push_back(format!("! {w}")),
            LogEvent::Lost(why) => self.trouble = Some(format!("LOST — reconnecting ({why})")),
            LogEvent::Resumed(_) => self.trouble = None,
            LogEvent::Ended(Ok(())) => self.trouble = Some("ended".into()),
            LogEvent::Ended(Err(e)) => self.trouble = Some(format!("ended: {e}")),
        }
    }
}

/// The grid's host filter: a regex over name, addresses, role and state; `!` inverts it.
pub struct Filter {
    pub text: String,
    invert: bool,
    regex: Result<regex::Regex, String>,
}

impl Filter {
    pub fn new(text: &str) -> Filter {
        let (invert, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        Filter {
            text: text.to_string(),
            invert,
            regex: regex::RegexBuilder::new(pattern)
                .case_insensitive(true)
                .build()
                .map_err(|e| e.to_string()),
        }
    }

    /// Why the pattern is not a regex, if it is not (then nothing is filtered out).
    pub fn error(&self) -> Option<&str> {
        self.regex.as_ref().err().map(String::as_str)
    }

    pub fn keeps(&self, haystack: &str) -> bool {
        match &self.regex {
            Ok(re) => re.is_match(haystack) != self.invert,
            Err(_) => true,
        }
    }
}

/// What the event loop must start or stop for the app (the app itself does no I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    OpenLogs(String),
    CloseLogs,
    Suspend,
}

/// A group in the clusters list: a cluster, every host, or the hosts outside clusters.
pub struct Group {
    pub name: String,
    pub label: String,
    pub hosts: Vec<String>,
}

pub struct App {
    pub fleet: Fleet,
    pub groups: Vec<Group>,
    pub states: HashMap<String, ConnState>,
    pub group: usize,
    pub host: usize,
    /// Tiles per row in the last frame, for moving up and down the grid.
    pub columns: usize,
    pub show_help: bool,
    pub quit: bool,
    pub logs: Option<LogPane>,
    pub requests: Vec<Request>,
    pub filter: Option<Filter>,
    /// The filter being typed after `/`, until Enter or Esc.
    pub input: Option<String>,
}

impl App {
    pub fn new(fleet: Fleet) -> App {
        let mut groups = vec![Group {
            name: "all".into(),
            label: "every host".into(),
            hosts: fleet.hosts.iter().map(|h| h.hostname.clone()).collect(),
        }];
        for c in &fleet.clusters {
            groups.push(Group {
                name: c.name.clone(),
                label: c.technology.label().into(),
                hosts: c.hosts.clone(),
            });
        }
        let plain: Vec<String> = fleet.plain_hosts().map(|h| h.hostname.clone()).collect();
        if !plain.is_empty() {
            groups.push(Group {
                name: "other hosts".into(),
                label: "outside clusters".into(),
                hosts: plain,
            });
        }
        App {
            fleet,
            groups,
            states: HashMap::new(),
            group: 0,
            host: 0,
            columns: 1,
            show_help: false,
            quit: false,
            logs: None,
            requests: Vec::new(),
            filter: None,
            input: None,
        }
    }

    pub fn state(&self, host: &str) -> &ConnState {
        self.states.get(host).unwrap_or(&ConnState::Idle)
    }

    /// The hosts of the selected group that pass the filter, in inventory order.
    pub fn selected_hosts(&self) -> Vec<String> {
        let Some(group) = self.groups.get(self.group) else {
            return Vec::new();
        };
        group
            .hosts
            .iter()
            .filter(|h| {
                self.filter
                    .as_ref()
                    .is_none_or(|f| f.keeps(&self.haystack(h)))
            })
            .cloned()
            .collect()
    }

    /// What a filter is matched against: name, addresses, roles and the live state.
    fn haystack(&self, name: &str) -> String {
        let mut s = name.to_string();
        if let Some(h) = self.fleet.host(name) {
            s.push_str(&format!(
                " {} {} {} {}",
                h.ip_private, h.role, h.subrole, h.pool
            ));
        }
        s.push_str(&format!(" {:?}", self.state(name)));
        s
    }

    /// A key typed while the filter is being entered.
    pub fn on_input(&mut self, key: crossterm::event::KeyCode) {
        use crossterm::event::KeyCode;
        let Some(text) = self.input.as_mut() else {
            return;
        };
        match key {
            KeyCode::Char(c) => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Enter => {
                let text = self.input.take().unwrap_or_default();
                self.filter = (!text.is_empty()).then(|| Filter::new(&text));
                self.host = 0;
            }
            KeyCode::Esc => self.input = None,
            _ => {}
        }
    }

    /// (up, down, unknown) over the given hosts.
    pub fn counts<'a>(&self, hosts: impl IntoIterator<Item = &'a String>) -> (usize, usize, usize) {
        let (mut up, mut down, mut unknown) = (0, 0, 0);
        for h in hosts {
            match self.state(h) {
                ConnState::Up { .. } => up += 1,
                ConnState::Idle | ConnState::Connecting => unknown += 1,
                _ => down += 1,
            }
        }
        (up, down, unknown)
    }

    pub fn on_conn(&mut self, event: ConnEvent) {
        // "connecting" while the host was already known up or down would only flicker.
        if event.state == ConnState::Connecting && self.states.contains_key(&event.host) {
            return;
        }
        self.states.insert(event.host, event.state);
    }

    pub fn apply(&mut self, action: Action) {
        if self.show_help {
            if matches!(action, Action::ToggleHelp | Action::Quit) {
                self.show_help = false;
            }
            return;
        }
        let n_hosts = self.selected_hosts().len();
        match action {
            // Esc / q first clears an active filter, then quits.
            Action::Quit if self.filter.is_some() => {
                self.filter = None;
                self.host = 0;
            }
            Action::Quit => self.quit = true,
            Action::StartFilter => self.input = Some(String::new()),
            Action::ToggleHelp => self.show_help = true,
            Action::NextCluster => {
                self.group = (self.group + 1) % self.groups.len().max(1);
                self.host = 0;
            }
            Action::PrevCluster => {
                self.group = (self.group + self.groups.len().max(1) - 1) % self.groups.len().max(1);
                self.host = 0;
            }
            Action::NextHost => self.host = (self.host + 1).min(n_hosts.saturating_sub(1)),
            Action::PrevHost => self.host = self.host.saturating_sub(1),
            Action::HostRowDown => {
                self.host = (self.host + self.columns).min(n_hosts.saturating_sub(1))
            }
            Action::HostRowUp => self.host = self.host.saturating_sub(self.columns),
            Action::OpenLogs => {
                if let Some(name) = self.selected_hosts().get(self.host).cloned() {
                    self.logs = Some(LogPane::new(&name));
                    self.requests.push(Request::OpenLogs(name));
                }
            }
            Action::Suspend => self.requests.push(Request::Suspend),
            Action::CloseLogs => {
                if self.logs.take().is_some() {
                    self.requests.push(Request::CloseLogs);
                }
            }
        }
    }
}
