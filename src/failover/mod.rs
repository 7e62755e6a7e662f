//! Failover tests, the way Jepsen would run them, live: preflight, a real client workload,
//! one fault, a heal no matter what, and measures of what clients saw (`kbz failover`).
//! Generic over technologies: a fault plan per service, a writer per client protocol.

pub mod ctx;
pub mod fault;
pub mod ledger;
pub mod measure;
pub mod rejoin;
pub mod report;
pub mod run;
pub mod save;
pub mod workload;
