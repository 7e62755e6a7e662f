//! Redis's failover workload: each write an `RPUSH` of its id to the run's own list, on the
//! master the Sentinels name (asked again after any error, as Sentinel clients do); the read
//! back is the list, from the master then.

use super::client::redis_connect;
use crate::probe::host_name;
use crate::tech::workload::{OP_TIMEOUT, Outcome, Start, Tunnels, Writer, Written, hosts_of};
use futures_util::future::BoxFuture;

/// The workload of the cluster `start` names: its members' Sentinels, its master's name.
pub fn start(s: &Start) -> Result<Box<dyn Writer>, String> {
    Ok(Box::new(RedisWriter {
        tunnels: Tunnels::new(s.pool, s.via),
        sentinels: s
            .cluster
            .hosts
            .iter()
            .filter_map(|h| s.fleet.host(h))
            .map(|h| h.ip_private.to_string())
            .collect(),
        master_name: s.cluster.name.clone(),
        password: s.secrets.get("redis_password").cloned(),
        key: format!("kbz:failover:{}", s.run),
        hosts: hosts_of(s.fleet),
        conn: None,
    }))
}

struct RedisWriter {
    tunnels: Tunnels,
    /// The Sentinels' addresses, asked in turn.
    sentinels: Vec<String>,
    master_name: String,
    password: Option<String>,
    key: String,
    hosts: Vec<(String, String)>,
    conn: Option<(String, redis::aio::MultiplexedConnection)>,
}

impl Writer for RedisWriter {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn write(&mut self, id: u64) -> BoxFuture<'_, Written> {
        Box::pin(self.write_now(id))
    }

    fn read_back(&mut self) -> BoxFuture<'_, Result<(String, Vec<u64>), String>> {
        Box::pin(self.read_back_now())
    }
}

impl RedisWriter {
    /// The master's address, as the first Sentinel that answers says.
    async fn resolve(&mut self) -> Result<String, String> {
        let mut errors = Vec::new();
        for ip in self.sentinels.clone() {
            let asked = async {
                let t = self.tunnels.to(&ip, 26379).await?;
                let mut c = redis_connect(t, self.password.as_deref()).await?;
                let addr: Vec<String> = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&self.master_name)
                    .query_async(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                addr.into_iter()
                    .next()
                    .ok_or_else(|| "no master known".to_string())
            };
            match tokio::time::timeout(OP_TIMEOUT, asked).await {
                Ok(Ok(master)) => return Ok(master),
                Ok(Err(e)) => errors.push(format!("{ip}: {e}")),
                Err(_) => errors.push(format!("{ip}: no answer")),
            }
        }
        Err(format!("no Sentinel answered: {}", errors.join("; ")))
    }

    async fn connect(&mut self) -> Result<(), String> {
        let master = self.resolve().await?;
        let node = host_name(&master, &self.hosts);
        let t = self.tunnels.to(&master, 6379).await?;
        let c = tokio::time::timeout(OP_TIMEOUT, redis_connect(t, self.password.as_deref()))
            .await
            .map_err(|_| format!("{node}: no answer"))??;
        self.conn = Some((node, c));
        Ok(())
    }

    async fn write_now(&mut self, id: u64) -> Written {
        if self.conn.is_none()
            && let Err(e) = self.connect().await
        {
            return (Outcome::Fail, None, Some(e));
        }
        let Some((node, conn)) = self.conn.as_mut() else {
            return (Outcome::Fail, None, Some("not connected".into()));
        };
        let node = node.clone();
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(&self.key).arg(id);
        let sent = cmd.query_async::<i64>(conn);
        let r = match tokio::time::timeout(OP_TIMEOUT, sent).await {
            Ok(Ok(_)) => return (Outcome::Ok, Some(node), None),
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                (Outcome::Unknown, Some(node), Some(e.to_string()))
            }
            // The server answered with an error (READONLY, LOADING...): not applied.
            Ok(Err(e)) => (Outcome::Fail, Some(node), Some(e.to_string())),
            Err(_) => (
                Outcome::Unknown,
                Some(node),
                Some("no answer within 1 s".into()),
            ),
        };
        // Ask the Sentinels again before the next write, as Sentinel clients do.
        self.conn = None;
        r
    }

    async fn read_back_now(&mut self) -> Result<(String, Vec<u64>), String> {
        self.connect().await?;
        let (node, conn) = self.conn.as_mut().ok_or("not connected")?;
        let ids: Vec<u64> = redis::cmd("LRANGE")
            .arg(&self.key)
            .arg(0)
            .arg(-1)
            .query_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&self.key).query_async(conn).await;
        Ok((node.clone(), ids.into_iter().collect()))
    }
}
