//! A Galera member read natively: its wsrep status (and, on full probes, the settings doctor
//! judges) on one kept-alive MySQL connection as kbz's monitoring user, which has no
//! privilege at all; when MariaDB does not answer, the saved state (`grastate.dat`, the
//! recovered position) from module 7's health endpoint, which a full stop needs.

use crate::ssh::{Pool, Target};
use crate::watch::http::Http;
use crate::watch::mysql::Mysql;
use crate::watch::{ASK, Ask, Reader, Reread, Section};
use futures_util::future::BoxFuture;

/// The monitoring user's password, written by module 7 (root-only).
pub const PASSWORD_FILE: &str = "/etc/kbz/secrets/galera_monitor_password";
pub const USER: &str = "kbz-monitor";
pub const PORT: u16 = 3306;
/// Module 7's health endpoint: `/` (Synced and Primary or not), `/grastate`, `/state` (and
/// for how long).
pub const HEALTH_PORT: u16 = 9200;
pub const STATUS: &str = "SHOW GLOBAL STATUS LIKE 'wsrep%'";
pub const VARIABLES: &str = "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
    ('innodb_flush_log_at_trx_commit', 'wsrep_sync_wait', 'wsrep_on', 'wsrep_cluster_address', \
    'wsrep_node_name', 'wsrep_sst_method')";

pub struct Member {
    sql: Mysql,
    health: Http,
    reread: Reread,
}

impl Member {
    pub fn new(pool: &Pool, target: Target, ip: &str) -> Member {
        Member {
            sql: Mysql::new(pool, target.clone(), ip, PORT, USER),
            health: Http::new(pool, target, ip, HEALTH_PORT),
            reread: Reread::default(),
        }
    }
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
    /// Sections: the wsrep status, the settings (full probes), the saved state (only when
    /// MariaDB does not answer), the state's duration (full probes, when not Synced).
    async fn read_now(&mut self, pool: &Pool, target: &Target, ask: Ask) -> Vec<Section> {
        if self.reread.due(self.sql.connected()) {
            let password = crate::watch::secret(pool, target, PASSWORD_FILE).await;
            self.sql.set_password(password.unwrap_or_default());
        }
        let status = self.sql.text(STATUS, ASK).await;
        let answered = matches!(&status, Ok(t) if !t.starts_with("ERROR "));
        if !answered {
            let grastate = match self.health.get("/grastate", ASK).await {
                Ok(r) if r.status == 200 => Ok(r.text()),
                Ok(r) => Err(format!("GET /grastate: HTTP {}", r.status)),
                Err(e) => Err(e),
            };
            return vec![status, Ok(String::new()), grastate];
        }
        if ask.quick {
            return vec![status, Ok(String::new()), Ok(String::new())];
        }
        let variables = self.sql.text(VARIABLES, ASK).await;
        // For how long a member has been out of Synced only the health endpoint, which
        // HAProxy asks every 2 s, can say: asked only then.
        let synced =
            matches!(&status, Ok(t) if t.lines().any(|l| l == "wsrep_local_state_comment\tSynced"));
        let state = if synced {
            Ok(String::new())
        } else {
            self.health.get("/state", ASK).await.map(|r| r.text())
        };
        vec![status, variables, Ok(String::new()), state]
    }
}
