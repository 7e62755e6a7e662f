//! Typing on the bottom line: the grid filter, log search and line filter, and `:` commands
//! with their history; and keys while a confirmation popup is open.

use super::app::{App, Filter, PromptKind};
use super::confirm::{Answer, Pending};
use super::logpane::Pattern;
use crate::engine::logs::LogSource;
use crossterm::event::KeyCode;

/// Commands `:` understands, for the help and for "unknown command".
pub const COMMANDS: &[(&str, &str)] = &[
    ("cluster NAME", "show a cluster (a unique prefix is enough)"),
    ("host NAME", "select a host"),
    ("mark SELECTOR", "mark hosts: names, globs, clusters, all"),
    ("unmark", "clear the marks"),
    (
        "logs [unit U | file PATH]",
        "follow marked / selected hosts",
    ),
    ("run COMMAND", "run on marked / selected hosts (confirmed)"),
    (
        "failover [CLUSTER] [FAULT] [HOST]",
        "failover test: stop kill partition freeze crash",
    ),
    ("filter REGEX", "filter the grid (empty: clear)"),
    ("theme [NAME]", "switch theme (alone: list them)"),
    ("save", "save the log pane"),
    ("q", "quit"),
];

/// Remembered across sessions, in the state dir.
pub const HISTORY_LIMIT: usize = 200;

impl App {
    /// A key typed while a prompt or a confirmation is open. Returns false when neither is.
    pub fn on_text_key(&mut self, key: KeyCode) -> bool {
        if let Some(confirm) = self.confirm.as_mut() {
            match confirm.key(key) {
                Answer::Waiting => {}
                Answer::Cancelled => {
                    self.confirm = None;
                    self.status = Some("cancelled".into());
                }
                Answer::Confirmed(done) => {
                    self.confirm = None;
                    self.requests.push(super::app::Request::Execute(done));
                }
            }
            return true;
        }
        if self.picker.is_some() {
            self.picker_key(key);
            return true;
        }
        let Some(prompt) = self.prompt.as_mut() else {
            return false;
        };
        match key {
            KeyCode::Char(c) => prompt.text.push(c),
            // Backspace on an empty prompt closes it.
            KeyCode::Backspace if prompt.text.pop().is_none() => self.prompt = None,
            KeyCode::Backspace => {}
            KeyCode::Esc => self.prompt = None,
            KeyCode::Up | KeyCode::Down if prompt.kind == PromptKind::Command => {
                let n = self.history.len();
                let pos = match (prompt.history_pos, key) {
                    (None, KeyCode::Up) => n.checked_sub(1),
                    (Some(p), KeyCode::Up) => Some(p.saturating_sub(1)),
                    (Some(p), _) if p + 1 < n => Some(p + 1),
                    _ => None,
                };
                prompt.history_pos = pos;
                prompt.text = pos
                    .and_then(|p| self.history.get(p).cloned())
                    .unwrap_or_default();
            }
            KeyCode::Enter => {
                let kind = prompt.kind;
                let text = prompt.text.clone();
                self.prompt = None;
                self.submit(kind, &text);
            }
            _ => {}
        }
        true
    }

    fn submit(&mut self, kind: PromptKind, text: &str) {
        let height = self.layout.pane_height.max(1);
        match kind {
            PromptKind::HostFilter => {
                self.filter = (!text.is_empty()).then(|| Filter::new(text));
                self.host = 0;
            }
            PromptKind::Search | PromptKind::LineFilter => {
                let Some(pane) = self.logs.as_mut() else {
                    return;
                };
                let pattern = if text.is_empty() {
                    None
                } else {
                    match Pattern::new(text) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            self.status = Some(format!("not a regex: {e}"));
                            return;
                        }
                    }
                };
                if kind == PromptKind::Search {
                    pane.search = pattern;
                    pane.current = None;
                    pane.find(false, height);
                } else {
                    pane.set_filter(pattern);
                }
            }
            PromptKind::Command => {
                let text = text.trim();
                if text.is_empty() {
                    return;
                }
                if self.history.last().is_none_or(|l| l != text) {
                    self.history.push(text.to_string());
                    let excess = self.history.len().saturating_sub(HISTORY_LIMIT);
                    self.history.drain(..excess);
                }
                self.command(text);
            }
        }
    }

    /// Runs one `:` command.
    pub fn command(&mut self, line: &str) {
        let (verb, rest) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(v, r)| (v, r.trim()));
        match verb {
            "q" | "quit" | "q!" => self.quit = true,
            "cluster" | "c" => self.goto_cluster(rest),
            "host" | "h" => self.goto_host(rest),
            "mark" => match crate::inventory::select(&self.fleet, rest) {
                Ok(hosts) => {
                    let n = hosts.len();
                    self.marked
                        .extend(hosts.into_iter().map(|h| h.hostname.clone()));
                    self.status = Some(format!("{n} hosts marked ({} in all)", self.marked.len()));
                }
                Err(e) => self.status = Some(e),
            },
            "unmark" => self.marked.clear(),
            "logs" | "log" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let source = match words.as_slice() {
                    [] => LogSource::Journal { unit: None },
                    ["unit", u] => LogSource::Journal {
                        unit: Some(u.to_string()),
                    },
                    ["file", p] => LogSource::File {
                        path: p.to_string(),
                    },
                    _ => {
                        self.status = Some("usage: :logs [unit UNIT | file PATH]".into());
                        return;
                    }
                };
                self.open_logs(self.targets(), source);
            }
            "run" | "!" if !rest.is_empty() => {
                let hosts = self.targets();
                if hosts.is_empty() {
                    self.status = Some("no host selected".into());
                } else {
                    self.confirm(Pending::Run {
                        hosts,
                        command: rest.to_string(),
                    });
                }
            }
            "failover" | "fo" => self.failover_command(rest),
            "filter" => {
                self.filter = (!rest.is_empty()).then(|| Filter::new(rest));
                self.host = 0;
            }
            "theme" if rest.is_empty() => {
                self.status = Some(match &self.themes {
                    Some(t) => format!("themes: {}", t.names().join(", ")),
                    None => "no themes".into(),
                })
            }
            "theme" => self.set_theme(rest),
            "save" => {
                self.tab = super::app::Tab::Logs;
                self.apply(super::keys::Action::SaveLogs);
            }
            "help" => self.show_help = true,
            _ => {
                let verbs: Vec<&str> = COMMANDS
                    .iter()
                    .map(|(c, _)| c.split(' ').next().unwrap_or(c))
                    .collect();
                self.status = Some(format!(
                    "unknown command :{line} (commands: {})",
                    verbs.join(", ")
                ));
            }
        }
    }

    fn goto_cluster(&mut self, name: &str) {
        if name.is_empty() {
            self.status = Some("usage: :cluster NAME".into());
            return;
        }
        let exact = self.groups.iter().position(|g| g.name == name);
        let prefixed: Vec<usize> = (0..self.groups.len())
            .filter(|&i| self.groups[i].name.starts_with(name))
            .collect();
        match (exact, prefixed.as_slice()) {
            (Some(i), _) | (None, &[i]) => {
                self.group = i;
                self.host = 0;
            }
            (None, []) => {
                let names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
                self.status = Some(format!(
                    "no cluster {name:?} (clusters: {})",
                    names.join(", ")
                ));
            }
            (None, many) => {
                let names: Vec<&str> = many.iter().map(|&i| self.groups[i].name.as_str()).collect();
                self.status = Some(format!("{name:?} could be {}", names.join(", ")));
            }
        }
    }

    fn goto_host(&mut self, name: &str) {
        if self.fleet.host(name).is_none() {
            self.status = Some(format!("no host {name:?} in ENV {}", self.fleet.env));
            return;
        }
        if !self.selected_hosts().iter().any(|h| h == name) {
            // Not in view: show every host, unfiltered.
            self.group = 0;
            self.filter = None;
        }
        if let Some(i) = self.selected_hosts().iter().position(|h| h == name) {
            self.host = i;
        }
    }
}
