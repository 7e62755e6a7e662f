//! The engine side the front ends read: what is known of each host, kept up to date by
//! background tasks. No terminal code here.

pub mod basics;
pub mod cross;
pub mod endpoints;
pub mod logs;
pub mod monitor;
pub mod probe;
pub mod prober;
