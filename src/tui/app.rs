//! The console's state and how actions and engine events change it. Pure: no terminal, no
//! I/O, so it can be driven by tests. What needs I/O goes out as a `Request`.

use super::cmdlog::CommandLog;
use super::confirm::{ConfirmAction, ConfirmedAction, Pending};
use super::keys::{Action, Context, Keymap};
use super::logpane::{LogPane, Pattern};
use super::theme::{Theme, Themes};
use crate::engine::logs::LogSource;
use crate::inventory::Fleet;
use crate::ssh::{ConnEvent, ConnState};
use ratatui::layout::Rect;
use std::collections::{BTreeSet, HashMap};

/// The grid's host filter: a regex over name, addresses, role and state; `!` inverts it. A
/// pattern that is not a regex filters nothing and says why.
pub struct Filter {
    pub text: String,
    pattern: Result<Pattern, String>,
}

impl Filter {
    pub fn new(text: &str) -> Filter {
        Filter {
            text: text.to_string(),
            pattern: Pattern::new(text),
        }
    }

    pub fn error(&self) -> Option<&str> {
        self.pattern.as_ref().err().map(String::as_str)
    }

    pub fn keeps(&self, haystack: &str) -> bool {
        self.pattern.as_ref().map_or(true, |p| p.keeps(haystack))
    }
}

/// What the event loop must start or stop for the app (the app itself does no I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    OpenLogs {
        hosts: Vec<String>,
        source: LogSource,
    },
    CloseLogs,
    Suspend,
    Execute(ConfirmedAction),
    /// Stop the module run in progress (its remote commands; logs are kept).
    CancelRun,
    /// Stop the failover test in progress: heal its fault now, then read back.
    StopFailover,
    /// Write these lines to a file in the state dir and say where.
    Save {
        name: String,
        lines: Vec<String>,
    },
}

/// A group in the clusters list: every host, a cluster, or the hosts outside clusters.
pub struct Group {
    pub name: String,
    pub label: String,
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Logs,
    Commands,
    Modules,
    Diagnostics,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Logs, Tab::Commands, Tab::Modules, Tab::Diagnostics];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Logs => "logs",
            Tab::Commands => "commands",
            Tab::Modules => "modules",
            Tab::Diagnostics => "diagnostics",
        }
    }
}

/// Text being typed on the bottom line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// `/` on the grid.
    HostFilter,
    /// `:`.
    Command,
    /// `/` in the log pane.
    Search,
    /// `&` in the log pane.
    LineFilter,
}

impl PromptKind {
    pub fn sigil(self) -> &'static str {
        match self {
            PromptKind::HostFilter | PromptKind::Search => "/",
            PromptKind::Command => ":",
            PromptKind::LineFilter => "&",
        }
    }
}

pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
    /// Position in the command history while browsing it with ↑ / ↓.
    pub history_pos: Option<usize>,
}

/// Where things were drawn in the last frame, for the mouse and for moving between rows.
#[derive(Default)]
pub struct Layout {
    pub groups: Rect,
    /// First group shown in the list (it scrolls).
    pub groups_offset: usize,
    pub grid: Rect,
    /// Each visible tile: its area and the host's index in `selected_hosts`.
    pub tiles: Vec<(Rect, usize)>,
    pub pane: Rect,
    pub pane_height: usize,
}

pub struct App {
    pub fleet: Fleet,
    pub groups: Vec<Group>,
    /// The group (cluster, or "other hosts") each host's section is in, in the "all" view.
    pub section_of: HashMap<String, usize>,
    pub states: HashMap<String, ConnState>,
    pub group: usize,
    pub host: usize,
    pub keymap: Keymap,
    pub theme: Theme,
    pub themes: Option<Themes>,
    pub readonly: bool,
    pub focus: Context,
    pub tab: Tab,
    /// The bottom pane is shown.
    pub pane_open: bool,
    pub fullscreen: bool,
    pub show_help: bool,
    pub quit: bool,
    pub logs: Option<LogPane>,
    pub commands: CommandLog,
    pub modules: super::modview::ModulesView,
    /// Each probed cluster's last status (or why the probe failed).
    pub clusters: HashMap<String, Result<crate::probe::ClusterStatus, String>>,
    /// Each host's last load / memory / disk / failed units / clock.
    pub basics: HashMap<String, crate::probe::host::HostBasics>,
    /// The endpoint checks' last round (shown with the load balancers).
    pub endpoints: Vec<crate::engine::endpoints::EndpointCheck>,
    pub requests: Vec<Request>,
    pub filter: Option<Filter>,
    pub prompt: Option<Prompt>,
    pub history: Vec<String>,
    pub marked: BTreeSet<String>,
    pub confirm: Option<ConfirmAction>,
    /// Choosing a failover test (before its confirmation).
    pub picker: Option<super::failpick::Picker>,
    /// The failover test running or last run (its view).
    pub failover: Option<super::failstate::FailoverView>,
    /// The fleet is kbz's lab (the crash fault needs it).
    pub lab: bool,
    /// A one-line answer to the last command or action, until the next key.
    pub status: Option<String>,
    pub layout: Layout,
}

impl App {
    pub fn new(fleet: Fleet) -> App {
        let mut all: Vec<String> = Vec::new();
        let mut groups = Vec::new();
        for c in &fleet.clusters {
            all.extend(c.hosts.iter().cloned());
            groups.push(Group {
                name: c.name.clone(),
                label: c.technology.label().into(),
                hosts: c.hosts.clone(),
            });
        }
        let plain: Vec<String> = fleet.plain_hosts().map(|h| h.hostname.clone()).collect();
        all.extend(plain.iter().cloned());
        if !plain.is_empty() {
            groups.push(Group {
                name: "other hosts".into(),
                label: "outside clusters".into(),
                hosts: plain,
            });
        }
        // "all" lists hosts cluster by cluster, so that its sections are contiguous.
        groups.insert(
            0,
            Group {
                name: "all".into(),
                label: "every host".into(),
                hosts: all,
            },
        );
        let section_of = groups
            .iter()
            .enumerate()
            .skip(1)
            .flat_map(|(i, g)| g.hosts.iter().map(move |h| (h.clone(), i)))
            .collect();
        App {
            fleet,
            groups,
            section_of,
            states: HashMap::new(),
            group: 0,
            host: 0,
            keymap: Keymap::defaults(),
            theme: Theme::builtin(),
            themes: None,
            readonly: false,
            focus: Context::Grid,
            tab: Tab::Logs,
            pane_open: false,
            fullscreen: false,
            show_help: false,
            quit: false,
            logs: None,
            commands: CommandLog::default(),
            modules: super::modview::ModulesView::default(),
            clusters: HashMap::new(),
            basics: HashMap::new(),
            endpoints: Vec::new(),
            requests: Vec::new(),
            filter: None,
            prompt: None,
            history: Vec::new(),
            marked: BTreeSet::new(),
            confirm: None,
            picker: None,
            failover: None,
            lab: false,
            status: None,
            layout: Layout::default(),
        }
    }

    pub fn state(&self, host: &str) -> &ConnState {
        self.states.get(host).unwrap_or(&ConnState::Idle)
    }

    pub fn is_prod(&self) -> bool {
        self.fleet.env.eq_ignore_ascii_case("prod")
    }

    /// The hosts of the selected group that pass the filter, in group order.
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

    pub fn current_host(&self) -> Option<String> {
        self.selected_hosts().get(self.host).cloned()
    }

    /// The marked hosts, or else the selected one: what logs and commands apply to.
    pub fn targets(&self) -> Vec<String> {
        if self.marked.is_empty() {
            self.current_host().into_iter().collect()
        } else {
            self.marked.iter().cloned().collect()
        }
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

    /// A host's live member entry from its cluster's last probe.
    pub fn live_member(&self, host: &str) -> Option<&crate::probe::Member> {
        let g = self.section_of.get(host)?;
        let status = self
            .clusters
            .get(&self.groups.get(*g)?.name)?
            .as_ref()
            .ok()?;
        status.members.iter().find(|m| m.host == host)
    }

    pub fn on_probe(&mut self, ev: crate::engine::prober::ProbeEvent) {
        let before = self
            .clusters
            .get(&ev.cluster)
            .and_then(|s| s.as_ref().ok())
            .and_then(|s| s.leader.clone());
        if let Ok(s) = &ev.status
            && s.leader != before
        {
            log::warn!(
                target: "probe",
                "{}: leader {} -> {} ({}, probe took {} ms)",
                ev.cluster,
                before.as_deref().unwrap_or("none"),
                s.leader.as_deref().unwrap_or("none"),
                if ev.pushed { "announced by the cluster" } else { "seen by the periodic probe" },
                ev.at.elapsed().as_millis()
            );
        }
        self.clusters.insert(ev.cluster, ev.status);
    }

    pub fn on_basics(&mut self, ev: crate::engine::basics::BasicsEvent) {
        match ev.basics {
            Ok(b) => {
                let before = self.basics.get(&ev.host).map(|p| p.warnings(&ev.host));
                let now = b.warnings(&ev.host);
                if before.as_ref() != Some(&now) {
                    for w in &now {
                        log::warn!(target: "host", "{}: {}. Fix: {}", w.what, w.why, w.fix);
                    }
                }
                self.basics.insert(ev.host, b);
            }
            Err(e) => log::debug!(target: "host", "{}: host basics: {e}", ev.host),
        }
    }

    pub fn on_endpoints(&mut self, checks: Vec<crate::engine::endpoints::EndpointCheck>) {
        for c in &checks {
            let was = self
                .endpoints
                .iter()
                .find(|e| e.name == c.name)
                .map(|e| e.ok);
            if was != Some(c.ok) {
                if c.ok {
                    log::info!(target: "endpoints", "{} {}: {}", c.name, c.address, c.detail);
                } else {
                    log::warn!(target: "endpoints", "{} {}: {}", c.name, c.address, c.detail);
                }
            }
        }
        self.endpoints = checks;
    }

    /// The keymap's context for the focused view.
    pub fn context(&self) -> Context {
        self.focus
    }

    pub fn set_theme(&mut self, name: &str) {
        match self.themes.as_ref().map(|t| t.load(name)) {
            Some(Ok(theme)) => {
                self.theme = theme;
                self.status = Some(format!("theme {name}"));
            }
            Some(Err(e)) => self.status = Some(e),
            None => self.status = Some("themes are not available here".into()),
        }
    }

    pub fn open_logs(&mut self, hosts: Vec<String>, source: LogSource) {
        if hosts.is_empty() {
            self.status = Some("no host selected".into());
            return;
        }
        let label = match &source {
            LogSource::Journal { unit: None } => "journal".to_string(),
            LogSource::Journal { unit: Some(u) } => format!("unit {u}"),
            LogSource::File { path } => format!("file {path}"),
        };
        self.logs = Some(LogPane::new(&hosts, &label));
        self.requests.push(Request::OpenLogs { hosts, source });
        self.pane_open = true;
        self.tab = Tab::Logs;
    }

    /// Asks for confirmation of a dangerous action; refused outright in `--readonly`.
    pub fn confirm(&mut self, pending: Pending) {
        if self.readonly
            && matches!(
                pending,
                Pending::Run { .. } | Pending::Modules { .. } | Pending::Failover { .. }
            )
        {
            self.status = Some("refused: kbz runs --readonly".into());
            return;
        }
        self.confirm = Some(ConfirmAction::new(pending, self.is_prod()));
    }

    pub fn apply(&mut self, action: Action) {
        self.status = None;
        if self.show_help {
            if matches!(action, Action::ToggleHelp | Action::Quit) {
                self.show_help = false;
            }
            return;
        }
        if self.readonly
            && self
                .keymap
                .bindings
                .iter()
                .any(|b| b.action == action && b.dangerous)
        {
            self.status = Some("refused: kbz runs --readonly".into());
            return;
        }
        let n_hosts = self.selected_hosts().len();
        let last = n_hosts.saturating_sub(1);
        let height = self.layout.pane_height.max(1);
        match action {
            // Esc / q closes what is open first: full screen, filter, then quits.
            Action::Quit if self.fullscreen => self.fullscreen = false,
            Action::Quit if self.filter.is_some() => {
                self.filter = None;
                self.host = 0;
            }
            Action::Quit if self.focus == Context::Pane => self.focus = Context::Grid,
            Action::PickFailover => self.pick_failover(),
            Action::CloseFailover => self.close_failover(),
            Action::NextPane if self.focus == Context::Failover => self.focus = Context::Grid,
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.show_help = true,
            Action::Command => self.start_prompt(PromptKind::Command),
            Action::Suspend => self.requests.push(Request::Suspend),
            Action::NextPane => self.next_pane(),
            Action::Fullscreen => self.fullscreen = !self.fullscreen,
            Action::StartFilter => self.start_prompt(PromptKind::HostFilter),
            Action::NextCluster => self.select_group((self.group + 1) % self.groups.len().max(1)),
            Action::PrevCluster => self.select_group(
                (self.group + self.groups.len().max(1) - 1) % self.groups.len().max(1),
            ),
            Action::NextHost => self.host = (self.host + 1).min(last),
            Action::PrevHost => self.host = self.host.saturating_sub(1),
            Action::HostRowDown => self.host = self.row_neighbour(true).min(last),
            Action::HostRowUp => self.host = self.row_neighbour(false),
            Action::OpenLogs => self.open_logs(self.targets(), LogSource::Journal { unit: None }),
            Action::MarkHost => {
                if let Some(h) = self.current_host()
                    && !self.marked.remove(&h)
                {
                    self.marked.insert(h);
                }
            }
            Action::TrustHostKey => self.trust_key(),
            Action::RunCommand => {
                self.start_prompt(PromptKind::Command);
                if let Some(p) = self.prompt.as_mut() {
                    p.text = "run ".into();
                }
            }
            Action::ClosePane => self.close_pane(),
            _ => self.pane_action(action, height),
        }
    }

    /// Esc in the Failover view: a running test is stopped (healed); a finished one's view
    /// closes.
    fn close_failover(&mut self) {
        match self.failover.as_mut() {
            Some(v) if v.running() => {
                if !v.stopping {
                    v.stopping = true;
                    self.requests.push(Request::StopFailover);
                }
                self.status = Some("stopping the test: healing the fault now".into());
            }
            _ => {
                self.failover = None;
                self.focus = Context::Grid;
            }
        }
    }

    pub(super) fn select_group(&mut self, group: usize) {
        self.group = group;
        self.host = 0;
    }

    fn next_pane(&mut self) {
        if self.focus == Context::Grid {
            self.focus = Context::Pane;
            self.pane_open = true;
            if self.logs.is_none() && self.tab == Tab::Logs {
                self.tab = Tab::Commands;
            }
            return;
        }
        let i = Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0);
        match Tab::ALL.get(i + 1) {
            Some(Tab::Logs) | None => self.focus = Context::Grid,
            Some(next) => self.tab = *next,
        }
        if self.focus == Context::Grid {
            self.tab = if self.logs.is_some() {
                Tab::Logs
            } else {
                Tab::Commands
            };
            self.fullscreen = false;
        }
    }

    fn close_pane(&mut self) {
        if self.tab == Tab::Modules
            && self
                .modules
                .run
                .as_ref()
                .is_some_and(|r| r.finished.is_none())
        {
            self.requests.push(Request::CancelRun);
            self.status = Some("stopping the run: remote commands are being stopped".into());
            return;
        }
        if self.logs.take().is_some() {
            self.requests.push(Request::CloseLogs);
        }
        self.pane_open = false;
        self.fullscreen = false;
        self.focus = Context::Grid;
    }

    fn trust_key(&mut self) {
        let Some(host) = self.current_host() else {
            return;
        };
        match self.state(&host).clone() {
            ConnState::HostKeyUnknown { key } => self.confirm(Pending::TrustKey { host, key }),
            ConnState::HostKeyChanged { .. } => {
                self.status = Some(format!(
                    "{host}'s host key CHANGED: kbz will not accept it here; if the host was \
                     reinstalled, remove the old entry (ssh-keygen -R {host})"
                ))
            }
            _ => self.status = Some(format!("{host}'s host key is not unknown")),
        }
    }

    pub(super) fn start_prompt(&mut self, kind: PromptKind) {
        self.prompt = Some(Prompt {
            kind,
            text: String::new(),
            history_pos: None,
        });
    }
}
