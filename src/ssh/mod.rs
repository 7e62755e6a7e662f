//! The SSH engine, on russh: one connection per host with many channels, strict host keys
//! with OpenSSH's rules, streamed exec with a cancel that stops the remote process, tunnels.
//! Used by the TUI and the headless commands alike.

pub mod client;
pub mod exec;
pub mod known_hosts;
pub mod pool;
pub mod quote;
pub mod stream;
pub mod target;
pub mod tunnel;

pub use client::ConnState;
pub use exec::{Exec, ExecEvent, ExecSpec, Exit, LineBuffer, Payload, Stream};
pub use pool::{CommandEvent, ConnEvent, Pool};
pub use target::{SshOptions, Target};
pub use tunnel::Tunnel;
