//! PostgreSQL's failover workload (Patroni's clusters): each write an `INSERT` of its id into
//! `kbz_failover`, through the load balancers' address as applications connect, a new session
//! after any error; the read back is the run's rows, from the primary then.

use super::client::{pg_connect, pg_error};
use crate::probe::host_name;
use crate::tech::workload::{OP_TIMEOUT, Outcome, Start, Tunnels, Writer, Written, hosts_of};
use futures_util::future::BoxFuture;

/// The workload through the fleet's PostgreSQL endpoint (the load-balancer module's).
pub fn start(s: &Start) -> Result<Box<dyn Writer>, String> {
    let (ip, port) = s.endpoint("postgres", "PostgreSQL")?;
    Ok(Box::new(PgWriter {
        tunnels: Tunnels::new(s.pool, s.via),
        address: (ip, port),
        password: s.secrets.get("pg_superuser_password").cloned(),
        run: s.run.to_string(),
        hosts: hosts_of(s.fleet),
        client: None,
    }))
}

struct PgWriter {
    tunnels: Tunnels,
    /// The load balancers' address (ip, port).
    address: (String, u16),
    password: Option<String>,
    run: String,
    hosts: Vec<(String, String)>,
    client: Option<tokio_postgres::Client>,
}

impl Writer for PgWriter {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async {
            let c = self.connect().await?;
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS kbz_failover (run text NOT NULL, id bigint NOT NULL, \
                 PRIMARY KEY (run, id))",
            )
            .await
            .map_err(|e| pg_error(&e))
        })
    }

    fn write(&mut self, id: u64) -> BoxFuture<'_, Written> {
        Box::pin(self.write_now(id))
    }

    fn read_back(&mut self) -> BoxFuture<'_, Result<(String, Vec<u64>), String>> {
        Box::pin(self.read_back_now())
    }
}

impl PgWriter {
    async fn connect(&mut self) -> Result<&tokio_postgres::Client, String> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let (ip, port) = self.address.clone();
            let t = self.tunnels.to(&ip, port).await?;
            let c = tokio::time::timeout(OP_TIMEOUT, pg_connect(t, self.password.as_deref()))
                .await
                .map_err(|_| "connect: no answer within 1 s".to_string())??;
            self.client = Some(c);
        }
        self.client.as_ref().ok_or_else(|| "not connected".into())
    }

    async fn write_now(&mut self, id: u64) -> Written {
        let run = self.run.clone();
        let hosts = self.hosts.clone();
        let c = match self.connect().await {
            Ok(c) => c,
            Err(e) => return (Outcome::Fail, None, Some(e)),
        };
        let id = id as i64;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&run, &id];
        let q = c.query_one(
            "INSERT INTO kbz_failover (run, id) VALUES ($1, $2) RETURNING host(inet_server_addr())",
            &params,
        );
        let r = match tokio::time::timeout(OP_TIMEOUT, q).await {
            Ok(Ok(row)) => {
                let node: Option<String> = row.try_get(0).ok();
                return (Outcome::Ok, node.map(|n| host_name(&n, &hosts)), None);
            }
            // The server refused it (read-only standby, shutting down): not applied.
            Ok(Err(e)) if e.as_db_error().is_some() => (Outcome::Fail, None, Some(pg_error(&e))),
            Ok(Err(e)) => (Outcome::Unknown, None, Some(pg_error(&e))),
            Err(_) => (Outcome::Unknown, None, Some("no answer within 1 s".into())),
        };
        // A new connection for the next write: the load balancer may route it elsewhere.
        self.client = None;
        r
    }

    async fn read_back_now(&mut self) -> Result<(String, Vec<u64>), String> {
        self.client = None;
        let run = self.run.clone();
        let hosts = self.hosts.clone();
        let c = self.connect().await?;
        let node: Option<String> = c
            .query_one("SELECT host(inet_server_addr())", &[])
            .await
            .map_err(|e| pg_error(&e))?
            .try_get(0)
            .map_err(|e| pg_error(&e))?;
        let rows = c
            .query("SELECT id FROM kbz_failover WHERE run = $1", &[&run])
            .await
            .map_err(|e| pg_error(&e))?;
        let ids = rows
            .iter()
            .filter_map(|r| r.try_get::<_, i64>(0).ok())
            .map(|i| i as u64)
            .collect();
        let _ = c
            .execute("DELETE FROM kbz_failover WHERE run = $1", &[&run])
            .await;
        Ok((
            node.map_or_else(|| "?".into(), |n| host_name(&n, &hosts)),
            ids,
        ))
    }
}
