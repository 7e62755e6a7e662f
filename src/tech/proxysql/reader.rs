//! A ProxySQL read natively: its admin tables over its admin port (MySQL's protocol, the
//! client of `watch::mysql`), on one kept-alive connection from the host itself, where
//! ProxySQL's admin users are allowed. No ProxySQL runs in the lab (no Debian package):
//! this path is tested on public captures only (tests/fixtures/probes/proxysql).

use crate::ssh::{Pool, Target};
use crate::watch::mysql::Mysql;
use crate::watch::{ASK, Ask, Reader, Reread, Section};
use futures_util::future::BoxFuture;

/// The admin credentials kbz reads with, `user:password` as in ProxySQL's
/// `admin-admin_credentials` (root-only; put there by the operator: no module installs
/// ProxySQL).
pub const CREDENTIALS_FILE: &str = "/etc/kbz/secrets/proxysql_admin";
pub const ADDRESS: &str = "127.0.0.1";
pub const PORT: u16 = 6032;
/// In the reading's order: the servers each hostgroup has, then (full probes) the Galera
/// hostgroups, the monitor's newest checks (Galera state, connects, pings), and the
/// connection pool.
pub const QUERIES: [&str; 6] = [
    "SELECT * FROM runtime_mysql_servers",
    "SELECT * FROM runtime_mysql_galera_hostgroups",
    "SELECT * FROM monitor.mysql_server_galera_log ORDER BY time_start_us DESC LIMIT 60",
    "SELECT * FROM monitor.mysql_server_connect_log ORDER BY time_start_us DESC LIMIT 60",
    "SELECT * FROM monitor.mysql_server_ping_log ORDER BY time_start_us DESC LIMIT 60",
    "SELECT * FROM stats_mysql_connection_pool",
];

#[derive(Default)]
pub struct Member {
    sql: Option<Mysql>,
    reread: Reread,
}

impl Reader for Member {
    fn read<'a>(
        &'a mut self,
        pool: &'a Pool,
        target: &'a Target,
        ask: Ask,
    ) -> BoxFuture<'a, Vec<Section>> {
        Box::pin(self.read_now(pool, target, ask))
    }
}

impl Member {
    async fn read_now(&mut self, pool: &Pool, target: &Target, ask: Ask) -> Vec<Section> {
        if self
            .reread
            .due(self.sql.as_ref().is_some_and(Mysql::connected))
        {
            self.sql = crate::watch::secret(pool, target, CREDENTIALS_FILE)
                .await
                .and_then(|c| {
                    let (user, password) = c.split_once(':')?;
                    let mut sql = Mysql::new(pool, target.clone(), ADDRESS, PORT, user);
                    sql.set_password(password.to_string());
                    Some(sql)
                });
        }
        let Some(sql) = self.sql.as_mut() else {
            return vec![Err(format!(
                "no {CREDENTIALS_FILE} on the host (ProxySQL's admin user:password, root-only)"
            ))];
        };
        let wanted = if ask.quick { 1 } else { QUERIES.len() };
        let mut out = Vec::new();
        for q in &QUERIES[..wanted] {
            let answer = sql.batch(q, ASK).await;
            let failed = answer.is_err();
            out.push(answer);
            if failed {
                break;
            }
        }
        out
    }
}
