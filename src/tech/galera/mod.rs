//! MariaDB Galera. Each member says only what it is itself: its wsrep status and a few
//! settings over the MySQL protocol, and when MariaDB does not answer, its saved state from
//! module 7's health endpoint (`reader`). `status` puts the members side by side (the
//! Primary component, its view, the writer), with `doctor`'s rules.

pub mod client;
mod doctor;
pub mod reader;
pub mod status;
pub mod workload;

use super::Watching;
use crate::inventory::{Cluster, Fleet};
use crate::ssh::quote::quote;

/// The Primary component's configuration id: every view change (a member lost or back)
/// raises it.
pub const EPOCH: &str = "conf_id";

pub const WATCHING: Watching = Watching {
    reader: |pool, _, host| {
        Box::new(reader::Member::new(
            pool,
            pool.target(host),
            &host.ip_private.to_string(),
        ))
    },
    script,
    status: status::status,
    feed: None,
};

/// The CLI path: the same sections as `reader`, from the `mariadb` client on member `on`
/// (the password in its environment, never on a command line).
fn script(_: &Fleet, _: &Cluster, on: &str, quick: bool) -> String {
    let sql = |q: &str| {
        format!(
            "MYSQL_PWD=\"$(cat {} 2>/dev/null)\" mariadb -h {} -u {} --connect-timeout=1 --batch --skip-column-names -e {}",
            reader::PASSWORD_FILE,
            quote(on),
            reader::USER,
            quote(q)
        )
    };
    [
        sql(reader::STATUS),
        if quick {
            "true".into()
        } else {
            sql(reader::VARIABLES)
        },
        format!(
            "{} >/dev/null 2>&1 || curl -fsS --max-time 1 {}",
            sql("SELECT 1"),
            quote(&format!("http://{on}:{}/grastate", reader::HEALTH_PORT))
        ),
        if quick {
            "true".into()
        } else {
            format!(
                "curl -fsS --max-time 1 {}",
                quote(&format!("http://{on}:{}/state", reader::HEALTH_PORT))
            )
        },
    ]
    .join(crate::watch::SEPARATOR)
}
