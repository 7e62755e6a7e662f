//! The one key table: the event loop maps keys through it, and the hint bar and the help
//! screen are generated from it, so they never drift from what keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    ToggleHelp,
    NextCluster,
    PrevCluster,
    NextHost,
    PrevHost,
    HostRowDown,
    HostRowUp,
    OpenLogs,
    CloseLogs,
    /// Ctrl-Z: give the terminal back to the shell; `fg` resumes.
    Suspend,
    /// `/`: type a regex that the grid's hosts must match (`!` first inverts it).
    StartFilter,
}

pub struct Binding {
    pub keys: &'static [KeyCode],
    /// How the hint bar and help write the keys.
    pub label: &'static str,
    pub action: Action,
    pub help: &'static str,
    /// Shown in the hint bar (the help screen shows every binding).
    pub hint: bool,
}

/// In the order the hint bar shows them: what a newcomer needs first.
#[rustfmt::skip]
pub const BINDINGS: &[Binding] = &[
    Binding { keys: &[KeyCode::Char('q'), KeyCode::Esc], label: "q", action: Action::Quit, help: "quit (or close help)", hint: true },
    Binding { keys: &[KeyCode::Char('?')], label: "?", action: Action::ToggleHelp, help: "help", hint: true },
    Binding { keys: &[KeyCode::Char('/')], label: "/", action: Action::StartFilter, help: "filter hosts", hint: true },
    Binding { keys: &[KeyCode::Enter], label: "⏎", action: Action::OpenLogs, help: "follow the host's journal", hint: true },
    Binding { keys: &[KeyCode::Char('x')], label: "x", action: Action::CloseLogs, help: "close the log pane", hint: false },
    Binding { keys: &[KeyCode::Char('j'), KeyCode::Down], label: "j/↓", action: Action::NextCluster, help: "next cluster", hint: true },
    Binding { keys: &[KeyCode::Char('k'), KeyCode::Up], label: "k/↑", action: Action::PrevCluster, help: "previous cluster", hint: true },
    Binding { keys: &[KeyCode::Char('l'), KeyCode::Right], label: "l/→", action: Action::NextHost, help: "next host", hint: true },
    Binding { keys: &[KeyCode::Char('h'), KeyCode::Left], label: "h/←", action: Action::PrevHost, help: "previous host", hint: true },
    Binding { keys: &[], label: "^Z", action: Action::Suspend, help: "suspend (fg resumes)", hint: false },
    Binding { keys: &[], label: "^C", action: Action::Quit, help: "quit", hint: false },
    Binding { keys: &[KeyCode::Char('J'), KeyCode::PageDown], label: "J/PgDn", action: Action::HostRowDown, help: "host one row down", hint: false },
    Binding { keys: &[KeyCode::Char('K'), KeyCode::PageUp], label: "K/PgUp", action: Action::HostRowUp, help: "host one row up", hint: false },
];

/// The action a key press means, if any. Ctrl-C always quits.
pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            KeyCode::Char('z') => Some(Action::Suspend),
            _ => None,
        };
    }
    BINDINGS
        .iter()
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen = Vec::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(!seen.contains(k), "{k:?} bound twice");
                seen.push(*k);
            }
        }
        assert_eq!(
            action_for(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE)),
            Some(Action::NextCluster)
        );
        assert_eq!(
            action_for(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
    }
}
