pub mod known_hosts;
pub mod quote;
