//! The one key table: the event loop maps keys through it, and the hint bar and the help
//! screen are generated from it, so they never drift from what keys do. Each view declares
//! its bindings in its own context; a user file (`$XDG_CONFIG_HOME/kbz/keys.toml`) changes
//! only the keys it names.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    ToggleHelp,
    /// `:` command mode.
    Command,
    /// Ctrl-Z: give the terminal back to the shell; `fg` resumes.
    Suspend,
    /// Focus the next pane: grid, logs, command log, diagnostics.
    NextPane,
    /// The focused pane alone on the screen (demos).
    Fullscreen,
    NextCluster,
    PrevCluster,
    NextHost,
    PrevHost,
    HostRowDown,
    HostRowUp,
    /// Follow the marked hosts' journals (or the selected host's).
    OpenLogs,
    /// Mark the selected host for a merged or split log view.
    MarkHost,
    /// `/` on the grid: a regex the hosts must match (`!` first inverts it).
    StartFilter,
    /// Accept an unknown host key after checking its fingerprint.
    TrustHostKey,
    /// Run a command on the marked (or selected) hosts: dangerous.
    RunCommand,
    ClosePane,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    Top,
    /// Back to the newest line and follow.
    Follow,
    /// Freeze the view; lines keep arriving underneath.
    Pause,
    Wrap,
    Timestamps,
    Search,
    NextMatch,
    PrevMatch,
    /// Show only lines matching a regex (`!` inverts).
    FilterLines,
    ScrollLeft,
    ScrollRight,
    /// Several hosts: one merged stream with host prefixes, or side-by-side panes.
    SplitLogs,
    SaveLogs,
    /// Modules tab: install the selected module (cleanup, install, verify).
    InstallModule,
    /// Modules tab: install the selected module and every later one.
    InstallFrom,
    /// Modules tab: clean the selected module up.
    CleanupModule,
    /// Choose a failover test on the selected cluster (or show the one running).
    PickFailover,
    /// Failover view: stop the test (healing its fault), or close the finished one.
    CloseFailover,
}

/// Where a binding applies. Global bindings apply everywhere unless the focused view binds
/// the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Global,
    Grid,
    Pane,
    Failover,
}

impl Context {
    fn section(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::Grid => "grid",
            Context::Pane => "pane",
            Context::Failover => "failover",
        }
    }
}

pub struct Binding {
    pub keys: Vec<KeyEvent>,
    pub context: Context,
    /// The name a user's keys.toml uses for it.
    pub name: &'static str,
    pub action: Action,
    pub help: &'static str,
    /// Shown in the hint bar (the help screen shows every binding).
    pub hint: bool,
    /// Refused in `--readonly`, and always confirmed.
    pub dangerous: bool,
}

impl Binding {
    /// How the hint bar and help write the keys.
    pub fn label(&self) -> String {
        let names: Vec<String> = self.keys.iter().map(key_label).collect();
        names.join("/")
    }
}

use Action as A;
use Context as C;

/// In the order the hint bar shows them: what a newcomer needs first.
#[rustfmt::skip]
const DEFAULTS: &[(C, &str, &str, A, &str, bool)] = &[
    (C::Global, "quit", "q esc", A::Quit, "quit (Esc: close what is open first)", true),
    (C::Global, "help", "?", A::ToggleHelp, "help", true),
    (C::Global, "command", ":", A::Command, "command (:cluster :host :theme :logs :run :q)", true),
    (C::Global, "next_pane", "tab", A::NextPane, "next pane / tab", true),
    (C::Global, "fullscreen", "f", A::Fullscreen, "focused pane full screen", false),
    (C::Global, "suspend", "ctrl-z", A::Suspend, "suspend (fg resumes)", false),
    (C::Grid, "filter", "/", A::StartFilter, "filter hosts (regex, ! inverts)", true),
    (C::Grid, "open_logs", "enter", A::OpenLogs, "logs of marked / selected hosts", true),
    (C::Grid, "mark", "space", A::MarkHost, "mark host", true),
    (C::Grid, "next_cluster", "j down", A::NextCluster, "next cluster", true),
    (C::Grid, "prev_cluster", "k up", A::PrevCluster, "previous cluster", false),
    (C::Grid, "next_host", "l right", A::NextHost, "next host", true),
    (C::Grid, "prev_host", "h left", A::PrevHost, "previous host", false),
    (C::Grid, "row_down", "J pgdn", A::HostRowDown, "host one row down", false),
    (C::Grid, "row_up", "K pgup", A::HostRowUp, "host one row up", false),
    (C::Grid, "trust_key", "a", A::TrustHostKey, "accept an unknown host key (shows it first)", false),
    (C::Grid, "run", "!", A::RunCommand, "run a command (confirmed)", true),
    (C::Grid, "failover", "F", A::PickFailover, "failover test on this cluster (confirmed)", true),
    (C::Failover, "stop_failover", "x esc", A::CloseFailover, "stop the test and heal now; once done, close", true),
    (C::Global, "close_pane", "x", A::ClosePane, "close the pane (stops its streams)", false),
    (C::Pane, "search", "/", A::Search, "search (n / N: next / previous)", true),
    (C::Pane, "next_match", "n", A::NextMatch, "next match", false),
    (C::Pane, "prev_match", "N", A::PrevMatch, "previous match", false),
    (C::Pane, "filter_lines", "&", A::FilterLines, "only matching lines (! inverts)", true),
    (C::Pane, "pause", "p space", A::Pause, "pause / follow", true),
    (C::Pane, "follow", "G end", A::Follow, "newest line, follow", false),
    (C::Pane, "top", "g home", A::Top, "oldest line", false),
    (C::Pane, "scroll_up", "k up", A::ScrollUp, "scroll up", false),
    (C::Pane, "scroll_down", "j down", A::ScrollDown, "scroll down", false),
    (C::Pane, "page_up", "pgup", A::PageUp, "page up", false),
    (C::Pane, "page_down", "pgdn", A::PageDown, "page down", false),
    (C::Pane, "scroll_left", "h left", A::ScrollLeft, "scroll left", false),
    (C::Pane, "scroll_right", "l right", A::ScrollRight, "scroll right", false),
    (C::Pane, "wrap", "w", A::Wrap, "wrap long lines", true),
    (C::Pane, "timestamps", "t", A::Timestamps, "timestamps on / off", false),
    (C::Pane, "split", "m", A::SplitLogs, "merged / split view of several hosts", false),
    (C::Pane, "save", "s", A::SaveLogs, "save the pane to a file", true),
    (C::Pane, "install", "i", A::InstallModule, "modules: install the selected module", false),
    (C::Pane, "install_from", "I", A::InstallFrom, "modules: install from the selected module on", false),
    (C::Pane, "cleanup", "c", A::CleanupModule, "modules: clean the selected module up", false),
];

pub struct Keymap {
    pub bindings: Vec<Binding>,
}

impl Keymap {
    pub fn defaults() -> Keymap {
        let bindings = DEFAULTS
            .iter()
            .map(|&(context, name, keys, action, help, hint)| Binding {
                keys: keys.split(' ').filter_map(|k| parse_key(k).ok()).collect(),
                context,
                name,
                action,
                help,
                hint,
                dangerous: matches!(
                    action,
                    A::RunCommand
                        | A::InstallModule
                        | A::InstallFrom
                        | A::CleanupModule
                        | A::PickFailover
                ),
            })
            .collect();
        Keymap { bindings }
    }

    /// The defaults with the user's file applied, if it exists. The file lists only what
    /// changes, by section and name:
    /// ```toml
    /// [grid]
    /// open_logs = ["o", "enter"]
    /// ```
    pub fn load(path: &Path) -> Result<Keymap, String> {
        let mut map = Keymap::defaults();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(map),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        map.apply(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(map)
    }

    pub fn apply(&mut self, text: &str) -> Result<(), String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        for (section, entries) in table {
            let entries = entries
                .as_table()
                .ok_or_else(|| format!("[{section}] must be a table of name = [\"key\", ...]"))?;
            for (name, keys) in entries {
                let binding = self
                    .bindings
                    .iter_mut()
                    .find(|b| b.context.section() == section && b.name == name)
                    .ok_or_else(|| format!("[{section}] {name}: no such binding"))?;
                let keys = keys
                    .as_array()
                    .ok_or_else(|| format!("[{section}] {name}: expected a list of keys"))?;
                binding.keys = keys
                    .iter()
                    .map(|k| {
                        k.as_str()
                            .ok_or_else(|| format!("[{section}] {name}: keys are strings"))
                            .and_then(parse_key)
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("[{section}] {name}: {e}"))?;
            }
        }
        self.check()
    }

    /// A key may mean one thing per context (a view's binding may shadow a global one).
    fn check(&self) -> Result<(), String> {
        for (i, a) in self.bindings.iter().enumerate() {
            for b in &self.bindings[i + 1..] {
                if a.context != b.context {
                    continue;
                }
                if let Some(k) = a.keys.iter().find(|k| b.keys.contains(k)) {
                    return Err(format!(
                        "key {} is bound to both {} and {} in [{}]",
                        key_label(k),
                        a.name,
                        b.name,
                        a.context.section()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The action a key press means in the focused context, if any. Ctrl-C always quits.
    pub fn action_for(&self, key: KeyEvent, focus: Context) -> Option<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        let key = normalise(key);
        let find = |ctx: Context| {
            self.bindings
                .iter()
                .find(|b| b.context == ctx && b.keys.contains(&key))
                .map(|b| b.action)
        };
        find(focus).or_else(|| find(Context::Global))
    }

    /// How the hint bar writes a binding in `focus`: a global binding without the keys the
    /// view binds to something else (None when the view shadows them all).
    pub fn hint_label(&self, b: &Binding, focus: Context) -> Option<String> {
        if b.context == focus {
            return Some(b.label());
        }
        let shadowed = |k: &KeyEvent| {
            self.bindings
                .iter()
                .any(|o| o.context == focus && o.keys.contains(k))
        };
        let keys: Vec<String> = b
            .keys
            .iter()
            .filter(|k| !shadowed(k))
            .map(key_label)
            .collect();
        (!keys.is_empty()).then(|| keys.join("/"))
    }

    /// Bindings that apply in `focus` (for the hint bar), view's first.
    pub fn active(&self, focus: Context) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(move |b| b.context == focus)
            .chain(
                self.bindings
                    .iter()
                    .filter(|b| b.context == Context::Global),
            )
    }
}

/// Shift is part of the character for printable keys ('N', '?'), so it is dropped there.
fn normalise(key: KeyEvent) -> KeyEvent {
    let mut mods = key.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
    if !matches!(key.code, KeyCode::Char(_)) {
        mods |= key.modifiers & KeyModifiers::SHIFT;
    }
    KeyEvent::new(key.code, mods)
}

/// `q`, `?`, `enter`, `esc`, `tab`, `space`, `up`, `pgdn`, `f5`, `ctrl-x`, `alt-x`.
pub fn parse_key(text: &str) -> Result<KeyEvent, String> {
    let mut mods = KeyModifiers::NONE;
    let mut rest = text;
    loop {
        if let Some(r) = rest.strip_prefix("ctrl-") {
            mods |= KeyModifiers::CONTROL;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("alt-") {
            mods |= KeyModifiers::ALT;
            rest = r;
        } else {
            break;
        }
    }
    let code = match rest {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "space" => KeyCode::Char(' '),
        "backspace" => KeyCode::Backspace,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" => KeyCode::PageUp,
        "pgdn" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
            KeyCode::F(f[1..].parse().unwrap_or(1))
        }
        c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().unwrap_or(' ')),
        other => {
            return Err(format!(
                "unknown key {other:?} (a character, enter, esc, tab, space, up, down, left, \
                 right, pgup, pgdn, home, end, f1-f12, with ctrl- or alt- in front)"
            ));
        }
    };
    Ok(KeyEvent::new(code, mods))
}

fn key_label(k: &KeyEvent) -> String {
    let base = match k.code {
        KeyCode::Enter => "⏎".to_string(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::Char(' ') => "Space".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::F(n) => format!("F{n}"),
        KeyCode::Char(c) => c.to_string(),
        other => format!("{other:?}"),
    };
    if k.modifiers.contains(KeyModifiers::CONTROL) {
        format!("^{}", base.to_uppercase())
    } else if k.modifiers.contains(KeyModifiers::ALT) {
        format!("M-{base}")
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn defaults_are_consistent_and_views_shadow_global_keys() {
        let map = Keymap::defaults();
        map.check().unwrap();
        for (_, name, keys, ..) in DEFAULTS {
            for k in keys.split(' ') {
                parse_key(k).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        assert_eq!(
            map.action_for(key(KeyCode::Down), Context::Grid),
            Some(Action::NextCluster)
        );
        assert_eq!(
            map.action_for(key(KeyCode::Down), Context::Pane),
            Some(Action::ScrollDown)
        );
        assert_eq!(
            map.action_for(key(KeyCode::Char('/')), Context::Pane),
            Some(Action::Search)
        );
        assert_eq!(
            map.action_for(key(KeyCode::Char('q')), Context::Pane),
            Some(Action::Quit),
            "global keys apply in views that do not bind them"
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(map.action_for(ctrl_c, Context::Grid), Some(Action::Quit));
        let shifted = KeyEvent::new(KeyCode::Char('N'), KeyModifiers::SHIFT);
        assert_eq!(
            map.action_for(shifted, Context::Pane),
            Some(Action::PrevMatch)
        );
    }

    #[test]
    fn user_file_changes_only_what_it_names() {
        let mut map = Keymap::defaults();
        map.apply("[grid]\nopen_logs = [\"o\", \"ctrl-l\"]\n")
            .unwrap();
        assert_eq!(
            map.action_for(key(KeyCode::Char('o')), Context::Grid),
            Some(Action::OpenLogs)
        );
        assert_eq!(map.action_for(key(KeyCode::Enter), Context::Grid), None);
        let ctrl_l = KeyEvent::new(KeyCode::Char('l'), KeyModifiers::CONTROL);
        assert_eq!(
            map.action_for(ctrl_l, Context::Grid),
            Some(Action::OpenLogs)
        );
        assert_eq!(
            map.action_for(key(KeyCode::Char('?')), Context::Grid),
            Some(Action::ToggleHelp),
            "untouched"
        );
        let label = map.bindings.iter().find(|b| b.name == "open_logs").unwrap();
        assert_eq!(label.label(), "o/^L");
        // The Failover view binds Esc: the hint bar's global quit is q alone there.
        let quit = map.bindings.iter().find(|b| b.name == "quit").unwrap();
        assert_eq!(
            map.hint_label(quit, Context::Failover).as_deref(),
            Some("q")
        );
        assert_eq!(
            map.hint_label(quit, Context::Grid).as_deref(),
            Some("q/Esc")
        );
    }

    #[test]
    fn user_file_mistakes_say_what_and_where() {
        let err = |text: &str| Keymap::defaults().apply(text).unwrap_err();
        assert!(err("[grid]\nopen_log = [\"o\"]").contains("[grid] open_log: no such binding"));
        assert!(err("[grid]\nopen_logs = [\"hyper-o\"]").contains("unknown key \"hyper-o\""));
        assert!(
            err("[grid]\nopen_logs = [\"l\"]")
                .contains("key l is bound to both open_logs and next_host in [grid]")
        );
        assert!(err("[grid\n").contains("line 1"), "{}", err("[grid\n"));
    }
}
