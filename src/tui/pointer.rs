//! Moving by where things were drawn: rows of tiles (sections make rows uneven), mouse clicks
//! and the wheel.

use super::app::App;
use super::keys::{Action, Context};
use ratatui::layout::Rect;

impl App {
    /// The tile in the next (or previous) row nearest the selected one's column, from where
    /// the last frame drew them (rows differ in length between cluster sections).
    pub(super) fn row_neighbour(&self, down: bool) -> usize {
        let tiles = &self.layout.tiles;
        let Some(&(me, _)) = tiles.iter().find(|(_, i)| *i == self.host) else {
            return self.host;
        };
        let candidates = tiles
            .iter()
            .filter(|(r, _)| if down { r.y > me.y } else { r.y < me.y });
        let row = if down {
            candidates.clone().map(|(r, _)| r.y).min()
        } else {
            candidates.clone().map(|(r, _)| r.y).max()
        };
        let Some(row) = row else {
            // Past the visible tiles: move by one row's worth.
            let columns = tiles.iter().filter(|(r, _)| r.y == me.y).count().max(1);
            return if down {
                self.host + columns
            } else {
                self.host.saturating_sub(columns)
            };
        };
        candidates
            .filter(|(r, _)| r.y == row)
            .min_by_key(|(r, _)| r.x.abs_diff(me.x))
            .map_or(self.host, |(_, i)| *i)
    }

    /// A click: selects a cluster or a host, or focuses the pane.
    pub fn on_click(&mut self, x: u16, y: u16) {
        let hit = |r: &Rect| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
        if let Some((_, i)) = self.layout.tiles.iter().find(|(r, _)| hit(r)) {
            self.host = *i;
            self.focus = Context::Grid;
        } else if hit(&self.layout.groups) {
            // One line per group inside the border.
            let row = y.saturating_sub(self.layout.groups.y + 1) as usize;
            let g = self.layout.groups_offset + row;
            if y > self.layout.groups.y && g < self.groups.len() {
                self.select_group(g);
                self.focus = Context::Grid;
            }
        } else if hit(&self.layout.pane) {
            self.focus = Context::Pane;
        }
    }

    /// The wheel: scrolls the pane under the pointer, or moves through the grid.
    pub fn on_wheel(&mut self, x: u16, y: u16, down: bool) {
        let r = self.layout.pane;
        if x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height {
            let saved = self.focus;
            self.focus = Context::Pane;
            for _ in 0..3 {
                self.apply(if down {
                    Action::ScrollDown
                } else {
                    Action::ScrollUp
                });
            }
            self.focus = saved;
        } else {
            self.apply(if down {
                Action::HostRowDown
            } else {
                Action::HostRowUp
            });
        }
    }
}
