//! kbz, the KeyBuzz fleet console. The engine (inventory, SSH, probes, modules, failover, lab)
//! never depends on the terminal UI; the TUI and the headless commands are two front ends.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod engine;
pub mod failover;
pub mod inventory;
pub mod lab;
pub mod modules;
pub mod paths;
pub mod probe;
pub mod ssh;
pub mod tech;
pub mod tui;
pub mod watch;
