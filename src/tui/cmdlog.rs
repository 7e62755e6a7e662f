//! The command log: every remote command kbz ran (host, command, exit, duration), newest
//! last, from the pool's command events.

use crate::ssh::{CommandEvent, Exit};
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// Entries kept; the oldest go first.
pub const COMMAND_LOG_CAPACITY: usize = 2_000;

pub struct Entry {
    pub id: u64,
    pub host: String,
    pub command: String,
    pub at: SystemTime,
    pub end: Option<(Exit, Duration)>,
}

#[derive(Default)]
pub struct CommandLog {
    pub entries: VecDeque<Entry>,
    /// Lines scrolled back from the newest; 0 follows.
    pub scroll: usize,
}

impl CommandLog {
    pub fn on_event(&mut self, event: CommandEvent) {
        match event {
            CommandEvent::Started {
                id,
                host,
                command,
                at,
            } => {
                if self.entries.len() == COMMAND_LOG_CAPACITY {
                    self.entries.pop_front();
                }
                self.entries.push_back(Entry {
                    id,
                    host,
                    command,
                    at,
                    end: None,
                });
            }
            CommandEvent::Ended { id, exit, duration } => {
                // Recent commands end first; search from the back.
                if let Some(e) = self.entries.iter_mut().rev().find(|e| e.id == id) {
                    e.end = Some((exit, duration));
                }
            }
        }
    }

    pub fn running(&self) -> usize {
        self.entries.iter().filter(|e| e.end.is_none()).count()
    }
}
