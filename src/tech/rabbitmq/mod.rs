//! RabbitMQ with quorum queues. Each member's node says, through its management API, how it
//! sees every node and queue, and through its Prometheus endpoint its own quorum queue
//! members' Raft terms (`reader`, parsed in `api`); `status` makes the members' views one
//! status, with `doctor`'s rules.

pub mod api;
pub mod client;
mod doctor;
pub mod reader;
pub mod status;
pub mod workload;

pub use doctor::stuck;

use super::Watching;
use crate::inventory::{Cluster, Fleet};
use crate::ssh::quote::quote;

/// Raft's term of the cluster's queue: a new leader has a higher one.
pub const EPOCH: &str = "term";
/// The quorum queue module 5 declares for the failover tests: its leader is the cluster's.
pub const QUEUE: &str = "kbz.failover";

pub const WATCHING: Watching = Watching {
    reader: |pool, _, host| {
        Box::new(reader::Member::new(
            pool,
            pool.target(host),
            &host.ip_private.to_string(),
            format!("rabbit@{}", host.hostname),
        ))
    },
    script,
    status: status::status,
    feed: None,
};

/// The CLI path: the same sections as `reader`, from curl on member `on` (the password on
/// curl's stdin, never on a command line).
fn script(_: &Fleet, _: &Cluster, on: &str, quick: bool) -> String {
    let auth = format!(
        "printf 'user = \"{}:%s\"\\n' \"$(cat {} 2>/dev/null)\"",
        reader::USER,
        reader::PASSWORD_FILE
    );
    let url = |port: u16, path: &str| quote(&format!("http://{on}:{port}{path}"));
    let api = |path: &str, fail: bool| {
        format!(
            "{auth} | curl -sS{} --max-time 1 -K - {}",
            if fail { "f" } else { "" },
            url(15672, path)
        )
    };
    let vm = format!(
        "{} >/dev/null 2>&1 || {{ timeout 1 bash -c {} 2>/dev/null && echo listening; }}",
        api(api::NODES, true),
        quote(&format!("exec 3<>/dev/tcp/{on}/{}", reader::DIST_PORT))
    );
    [
        api(api::NODES, true),
        api(api::QUEUES, true),
        if quick {
            "true".into()
        } else {
            api(api::CRITICAL, false)
        },
        format!("curl -fsS --max-time 1 {}", url(15692, api::METRICS)),
        reader::CONFIG.to_string(),
        vm,
    ]
    .join(crate::watch::SEPARATOR)
}
