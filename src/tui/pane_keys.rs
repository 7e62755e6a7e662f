//! What keys do in the bottom pane's tabs: scrolling and searching logs, the command log,
//! and launching module runs from the modules tab.

use super::app::{App, PromptKind, Request, Tab};
use super::confirm::Pending;
use super::keys::Action;

impl App {
    pub(super) fn pane_action(&mut self, action: Action, height: usize) {
        if self.tab == Tab::Modules {
            self.modules_action(action);
            return;
        }
        if self.tab == Tab::Commands {
            let max = self.commands.entries.len();
            match action {
                Action::ScrollUp => self.commands.scroll = (self.commands.scroll + 1).min(max),
                Action::ScrollDown => self.commands.scroll = self.commands.scroll.saturating_sub(1),
                Action::PageUp => self.commands.scroll = (self.commands.scroll + height).min(max),
                Action::PageDown => {
                    self.commands.scroll = self.commands.scroll.saturating_sub(height)
                }
                Action::Follow => self.commands.scroll = 0,
                Action::Top => self.commands.scroll = max,
                _ => {}
            }
            return;
        }
        if self.tab != Tab::Logs {
            return;
        }
        let Some(pane) = self.logs.as_mut() else {
            return;
        };
        let page = height.saturating_sub(1).max(1) as i64;
        match action {
            Action::ScrollUp => pane.scroll(-1),
            Action::ScrollDown => pane.scroll(1),
            Action::PageUp => pane.scroll(-page),
            Action::PageDown => pane.scroll(page),
            Action::Top => pane.top(height),
            Action::Follow => pane.follow(),
            Action::Pause => pane.toggle_pause(),
            Action::Wrap => pane.wrap = !pane.wrap,
            Action::Timestamps => pane.timestamps = !pane.timestamps,
            Action::ScrollLeft => pane.hscroll = pane.hscroll.saturating_sub(8),
            Action::ScrollRight => pane.hscroll = pane.hscroll.saturating_add(8),
            Action::SplitLogs => pane.split = !pane.split,
            Action::NextMatch => pane.find(true, height),
            Action::PrevMatch => pane.find(false, height),
            Action::Search => self.start_prompt(PromptKind::Search),
            Action::FilterLines => self.start_prompt(PromptKind::LineFilter),
            Action::SaveLogs => {
                let name = pane
                    .hosts
                    .iter()
                    .map(|h| h.host.as_str())
                    .collect::<Vec<_>>()
                    .join("+");
                self.requests.push(Request::Save {
                    name,
                    lines: pane.export(),
                });
            }
            _ => {}
        }
    }

    fn modules_action(&mut self, action: Action) {
        let n = self.modules.rows.len();
        let m = &mut self.modules;
        match action {
            Action::ScrollUp => m.selected = m.selected.saturating_sub(1),
            Action::ScrollDown => m.selected = (m.selected + 1).min(n.saturating_sub(1)),
            Action::InstallModule | Action::InstallFrom | Action::CleanupModule => {
                if m.run.as_ref().is_some_and(|r| r.finished.is_none()) {
                    self.status = Some("a run is in progress (x stops it)".into());
                    return;
                }
                let Some(row) = m.rows.get(m.selected) else {
                    return;
                };
                let pending = Pending::Modules {
                    number: row.number,
                    name: row.name.clone(),
                    from: action == Action::InstallFrom,
                    install: action != Action::CleanupModule,
                    wipes: row.wipes.clone(),
                };
                self.confirm(pending);
            }
            _ => {}
        }
    }
}
