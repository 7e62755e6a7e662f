//! The client workload of a failover test: one writer, one operation in flight at a time, each
//! with a unique increasing id, timed on the run's monotonic clock, its outcome ok / fail /
//! unknown and the node that served it. Through the client path real applications use:
//! Sentinel-discovered master for Redis (re-resolved after any error, as Sentinel clients do),
//! the load balancers' address for PostgreSQL; over SSH tunnels with real client libraries.

use crate::inventory::{Fleet, Host};
use crate::probe::endpoints::{pg_connect, pg_error, redis_connect};
use crate::probe::host_name;
use crate::ssh::{Pool, Tunnel};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// An operation gives up after this long: its outcome is then unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged: it must be there after the test.
    Ok,
    /// Refused before or by the server: it must not be there.
    Fail,
    /// Timed out or the connection dropped after sending: it may or may not be there.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Op {
    pub id: u64,
    pub start_ms: f64,
    pub end_ms: f64,
    pub outcome: Outcome,
    /// The node that served it (acknowledged or refused), when known.
    pub node: Option<String>,
    pub error: Option<String>,
}

/// The run's one clock: milliseconds since the run started.
#[derive(Debug, Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }
}

type Result1 = (Outcome, Option<String>, Option<String>);

/// Tunnels from the via host, one per remote address, made on first use.
struct Tunnels {
    pool: Pool,
    via: Host,
    open: HashMap<(String, u16), Tunnel>,
}

impl Tunnels {
    async fn to(&mut self, ip: &str, port: u16) -> Result<&Tunnel, String> {
        let key = (ip.to_string(), port);
        if !self.open.contains_key(&key) {
            let t = self
                .pool
                .tunnel(&self.pool.target(&self.via), ip, port)
                .await
                .map_err(|s| s.explain(&self.via.hostname))?;
            self.open.insert(key.clone(), t);
        }
        self.open
            .get(&key)
            .ok_or_else(|| "tunnel vanished".to_string())
    }
}

pub struct RedisWriter {
    tunnels: Tunnels,
    /// The Sentinels' addresses, asked in turn.
    sentinels: Vec<String>,
    master_name: String,
    password: Option<String>,
    key: String,
    hosts: Vec<(String, String)>,
    conn: Option<(String, redis::aio::MultiplexedConnection)>,
}

pub struct PgWriter {
    tunnels: Tunnels,
    /// The load balancers' address (ip, port).
    address: (String, u16),
    password: Option<String>,
    run: String,
    hosts: Vec<(String, String)>,
    client: Option<tokio_postgres::Client>,
}

pub enum Writer {
    Redis(RedisWriter),
    Postgres(PgWriter),
}

fn hosts_of(fleet: &Fleet) -> Vec<(String, String)> {
    fleet
        .hosts
        .iter()
        .map(|h| (h.hostname.clone(), h.ip_private.to_string()))
        .collect()
}

impl Writer {
    pub fn redis(
        pool: &Pool,
        fleet: &Fleet,
        via: &Host,
        sentinel_hosts: &[String],
        master_name: &str,
        password: Option<String>,
        run: &str,
    ) -> Writer {
        Writer::Redis(RedisWriter {
            tunnels: Tunnels {
                pool: pool.clone(),
                via: via.clone(),
                open: HashMap::new(),
            },
            sentinels: sentinel_hosts
                .iter()
                .filter_map(|h| fleet.host(h))
                .map(|h| h.ip_private.to_string())
                .collect(),
            master_name: master_name.to_string(),
            password,
            key: format!("kbz:failover:{run}"),
            hosts: hosts_of(fleet),
            conn: None,
        })
    }

    pub fn postgres(
        pool: &Pool,
        fleet: &Fleet,
        via: &Host,
        address: &str,
        password: Option<String>,
        run: &str,
    ) -> Result<Writer, String> {
        let (ip, port) = address
            .rsplit_once(':')
            .and_then(|(ip, p)| p.parse::<u16>().ok().map(|p| (ip.to_string(), p)))
            .ok_or_else(|| format!("{address:?} is not ip:port"))?;
        Ok(Writer::Postgres(PgWriter {
            tunnels: Tunnels {
                pool: pool.clone(),
                via: via.clone(),
                open: HashMap::new(),
            },
            address: (ip, port),
            password,
            run: run.to_string(),
            hosts: hosts_of(fleet),
            client: None,
        }))
    }

    /// Prepares what the writes need (the PostgreSQL table).
    pub async fn setup(&mut self) -> Result<(), String> {
        match self {
            Writer::Redis(_) => Ok(()),
            Writer::Postgres(w) => {
                let c = w.connect().await?;
                c.batch_execute(
                    "CREATE TABLE IF NOT EXISTS kbz_failover (run text NOT NULL, id bigint NOT NULL, \
                     PRIMARY KEY (run, id))",
                )
                .await
                .map_err(|e| pg_error(&e))
            }
        }
    }

    async fn write(&mut self, id: u64) -> Result1 {
        match self {
            Writer::Redis(w) => w.write(id).await,
            Writer::Postgres(w) => w.write(id).await,
        }
    }

    /// Every id present now, read from the current leader, and which node that was.
    pub async fn read_back(&mut self) -> Result<(String, BTreeSet<u64>), String> {
        match self {
            Writer::Redis(w) => w.read_back().await,
            Writer::Postgres(w) => w.read_back().await,
        }
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

    async fn write(&mut self, id: u64) -> Result1 {
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

    async fn read_back(&mut self) -> Result<(String, BTreeSet<u64>), String> {
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

    async fn write(&mut self, id: u64) -> Result1 {
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

    async fn read_back(&mut self) -> Result<(String, BTreeSet<u64>), String> {
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

/// Writes until `stop` turns true, one operation every `interval` (one in flight), sending
/// each as it ends. Returns the writer, for the read back.
pub async fn run(
    mut writer: Writer,
    clock: Clock,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Op>,
) -> Writer {
    let mut id = 0u64;
    loop {
        if *stop.borrow() {
            return writer;
        }
        id += 1;
        let started = Instant::now();
        let start_ms = clock.ms();
        let (outcome, node, error) = writer.write(id).await;
        let _ = tx.send(Op {
            id,
            start_ms,
            end_ms: clock.ms(),
            outcome,
            node,
            error,
        });
        let next = started + interval;
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = stop.changed() => {}
        }
    }
}
