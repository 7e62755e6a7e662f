//! ProxySQL in front of Galera: which backend each hostgroup sends to (`runtime_mysql_servers`,
//! `mysql_galera_hostgroups`), what its monitor sees of each member, and its connection pool,
//! from its admin tables (`reader`, `tables`); `status` puts its proxies side by side, with
//! doctor's rules. ProxySQL has no Debian package: none of this has run against a live
//! ProxySQL here; it is tested on public captures of real output (docs/probes.md).

mod doctor;
pub mod proxy;
pub mod reader;
pub mod status;
pub mod tables;
#[cfg(test)]
mod tests;

use super::Watching;
use crate::inventory::{Cluster, Fleet};
use crate::ssh::quote::quote;

pub const WATCHING: Watching = Watching {
    reader: |_, _, _| Box::<reader::Member>::default(),
    script,
    status: status::status,
    feed: None,
};

/// The CLI path: the same sections as `reader`, from the `mysql` client on the ProxySQL host
/// (the password in its environment, never on a command line).
fn script(_: &Fleet, _: &Cluster, _on: &str, quick: bool) -> String {
    let wanted = if quick { 1 } else { reader::QUERIES.len() };
    reader::QUERIES[..wanted]
        .iter()
        .map(|q| {
            format!(
                "c=\"$(cat {file} 2>/dev/null)\"; MYSQL_PWD=\"${{c#*:}}\" mysql -h {} -P {} -u \"${{c%%:*}}\" --connect-timeout=1 --batch -e {}",
                reader::ADDRESS,
                reader::PORT,
                quote(q),
                file = reader::CREDENTIALS_FILE,
            )
        })
        .collect::<Vec<_>>()
        .join(crate::watch::SEPARATOR)
}
