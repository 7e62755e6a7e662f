//! Galera's failover workload: each write one autocommitted `INSERT` of its id into
//! `kbz.failover`, through the load balancers' address as applications connect (one writer
//! at a time), on a new connection after any error; the node that served it is the
//! connection's `@@hostname`. The read back is the run's rows, through the same address.

use super::client;
use crate::tech::workload::{MemberIds, OP_TIMEOUT, Outcome, Start, Tunnels, Writer, Written};
use crate::watch::mysql::{Failure, Mysql};
use futures_util::future::BoxFuture;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS kbz.failover (run VARCHAR(64) NOT NULL, \
    id BIGINT NOT NULL, node VARCHAR(64) NOT NULL, \
    at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (run, id))";

/// The workload through the fleet's Galera endpoint (the load-balancer module's).
pub fn start(s: &Start) -> Result<Box<dyn Writer>, String> {
    let (ip, port) = s.endpoint("galera", "Galera")?;
    let password = s
        .secrets
        .get("galera_password")
        .cloned()
        .ok_or("no galera_password secret: install module 7 first")?;
    Ok(Box::new(GaleraWriter {
        tunnels: Tunnels::new(s.pool, s.via),
        address: (ip, port),
        password,
        // A run id is kbz's own (digits, letters, dashes); anything else is dropped rather
        // than quoted into SQL.
        run: s
            .run
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect(),
        conn: None,
        members: s
            .cluster
            .hosts
            .iter()
            .filter_map(|h| s.fleet.host(h))
            .map(|h| (h.hostname.clone(), h.ip_private.to_string()))
            .collect(),
    }))
}

struct GaleraWriter {
    tunnels: Tunnels,
    address: (String, u16),
    password: String,
    run: String,
    /// The open connection and the member behind it.
    conn: Option<(Mysql, String)>,
    /// Every member, by name and private address: each is read on its own after the test.
    members: Vec<(String, String)>,
}

impl Writer for GaleraWriter {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async {
            let (c, _) = self.connect().await?;
            c.query(CREATE, OP_TIMEOUT * 5)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn write(&mut self, id: u64) -> BoxFuture<'_, Written> {
        Box::pin(self.write_now(id))
    }

    fn read_back(&mut self) -> BoxFuture<'_, Result<(String, Vec<u64>), String>> {
        Box::pin(self.read_back_now())
    }

    fn read_members(&mut self) -> BoxFuture<'_, MemberIds> {
        Box::pin(self.read_members_now())
    }
}

impl GaleraWriter {
    async fn connect(&mut self) -> Result<&mut (Mysql, String), String> {
        if self.conn.is_none() {
            let (ip, port) = self.address.clone();
            let local = self.tunnels.to(&ip, port).await?.local;
            let mut c = client::over(local, &self.password);
            let rows = c
                .query("SELECT @@hostname", OP_TIMEOUT)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let node = rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_else(|| "?".into());
            self.conn = Some((c, node));
        }
        self.conn.as_mut().ok_or_else(|| "not connected".into())
    }

    async fn write_now(&mut self, id: u64) -> Written {
        let sql = format!(
            "INSERT INTO kbz.failover (run, id, node) VALUES ('{}', {id}, @@hostname)",
            self.run
        );
        let (c, node) = match self.connect().await {
            Ok(c) => c,
            Err(e) => return (Outcome::Fail, None, Some(e)),
        };
        let node = node.clone();
        let r = match c.query(&sql, OP_TIMEOUT).await {
            Ok(_) => return (Outcome::Ok, Some(node), None),
            // Refused: not Primary (1047), a certification conflict (1213), read-only...
            Err(e @ Failure::Server { .. }) => (Outcome::Fail, Some(node), Some(e.to_string())),
            // Sent, and the connection dropped or went silent: committed or not.
            Err(e) => (Outcome::Unknown, Some(node), Some(e.to_string())),
        };
        // A new connection for the next write: the load balancer may route it elsewhere.
        self.conn = None;
        r
    }

    /// The run's ids on each member, straight to its own port (wsrep_sync_wait 1: what the
    /// cluster committed before the read is there, or the member says it is not Synced).
    async fn read_members_now(&mut self) -> MemberIds {
        let mut out = Vec::new();
        for (name, ip) in self.members.clone() {
            let read = async {
                let local = self.tunnels.to(&ip, super::reader::PORT).await?.local;
                let mut c = client::over(local, &self.password);
                let sql = format!("SELECT id FROM kbz.failover WHERE run = '{}'", self.run);
                let rows = c
                    .query(&sql, OP_TIMEOUT * 5)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(ids(&rows))
            };
            out.push((name, read.await));
        }
        out
    }

    async fn read_back_now(&mut self) -> Result<(String, Vec<u64>), String> {
        self.conn = None;
        let run = self.run.clone();
        let (c, node) = self.connect().await?;
        let node = node.clone();
        let limit = OP_TIMEOUT * 10;
        let rows = c
            .query(
                &format!("SELECT id FROM kbz.failover WHERE run = '{run}'"),
                limit,
            )
            .await
            .map_err(|e| e.to_string())?;
        let ids = ids(&rows);
        let _ = c
            .query(
                &format!("DELETE FROM kbz.failover WHERE run = '{run}'"),
                limit,
            )
            .await;
        Ok((node, ids))
    }
}

fn ids(rows: &crate::watch::mysql::Rows) -> Vec<u64> {
    rows.iter()
        .filter_map(|r| r.first().cloned().flatten()?.parse().ok())
        .collect()
}
