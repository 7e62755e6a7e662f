//! Endpoint checks: each service endpoint (service -> address:port, as the load-balancer module
//! recorded it) spoken to in its own protocol through an SSH tunnel, the way an application
//! would: PostgreSQL `SELECT 1` and whether it is the primary, Redis `PING` and `ROLE`; the
//! round-trip time and the node that answered. The failover workloads reuse the clients.

use crate::inventory::{Fleet, Host};
use crate::ssh::{Pool, Tunnel};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A check gives up after this long: an endpoint slower than that is down to its clients too.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointCheck {
    pub name: String,
    pub address: String,
    /// postgres, redis, http, tcp.
    pub protocol: &'static str,
    pub ok: bool,
    /// One protocol round trip, once connected.
    pub rtt_ms: Option<f64>,
    /// What answered: "primary on db-master-01", "master on redis-02".
    pub detail: String,
    /// The host the tunnel goes through.
    pub via: String,
}

/// The protocol spoken to an endpoint, from its name (`postgres-primary`, `redis-master`):
/// the registry's.
pub fn protocol(name: &str) -> &'static str {
    crate::tech::protocol(name)
}

/// The endpoints of the fleet's ENV: what the modules recorded, then kbz.toml's `[endpoints]`
/// on top (a team's own names or addresses win).
pub fn endpoints_of(
    fleet: &Fleet,
    state: &std::path::Path,
) -> Result<BTreeMap<String, String>, String> {
    let mut all = crate::modules::record::endpoints(state, &fleet.env);
    all.extend(crate::inventory::fleet_config(&fleet.source)?.endpoints);
    Ok(all)
}

/// The host tunnels go through: the orchestrator (where a team runs its tools), else the
/// first host of the inventory. Either sits on the private network the endpoints serve.
pub fn via_host<'a>(fleet: &'a Fleet, asked: Option<&str>) -> Result<&'a Host, String> {
    if let Some(name) = asked {
        return fleet
            .host(name)
            .ok_or_else(|| format!("no host {name:?} in the inventory"));
    }
    fleet
        .hosts
        .iter()
        .find(|h| h.role == "orchestrator")
        .or_else(|| fleet.hosts.first())
        .ok_or_else(|| "the inventory has no hosts".to_string())
}

/// Credentials a check needs, from the ENV's secrets (names as the modules' manifests give).
pub struct Credentials {
    pub pg_password: Option<String>,
    pub redis_password: Option<String>,
}

impl Credentials {
    pub fn from_secrets(values: &BTreeMap<String, String>) -> Credentials {
        Credentials {
            pg_password: values.get("pg_superuser_password").cloned(),
            redis_password: values.get("redis_password").cloned(),
        }
    }
}

/// Checks every endpoint, all at once.
pub async fn check_all(
    pool: &Pool,
    fleet: &Fleet,
    via: &Host,
    endpoints: &BTreeMap<String, String>,
    creds: &Credentials,
) -> Vec<EndpointCheck> {
    let hosts: Vec<(String, String)> = fleet
        .hosts
        .iter()
        .map(|h| (h.hostname.clone(), h.ip_private.to_string()))
        .collect();
    let checks = endpoints
        .iter()
        .map(|(name, address)| check(pool, via, name, address, creds, &hosts));
    futures_util::future::join_all(checks).await
}

/// Checks one endpoint.
pub async fn check(
    pool: &Pool,
    via: &Host,
    name: &str,
    address: &str,
    creds: &Credentials,
    hosts: &[(String, String)],
) -> EndpointCheck {
    let proto = protocol(name);
    let mut result = EndpointCheck {
        name: name.to_string(),
        address: address.to_string(),
        protocol: proto,
        ok: false,
        rtt_ms: None,
        detail: String::new(),
        via: via.hostname.clone(),
    };
    let outcome = tokio::time::timeout(TIMEOUT, async {
        // `ip:port/path`: HTTP endpoints may name the page to ask for.
        let (address, path) = address.split_once('/').unwrap_or((address, ""));
        let tunnel = open(pool, via, address).await?;
        match proto {
            "postgres" => postgres(&tunnel, creds.pg_password.as_deref(), hosts).await,
            "redis" => redis_check(&tunnel, creds.redis_password.as_deref(), hosts).await,
            // The first request also pays for opening the tunnel's channel; time the second.
            "http" => match http(&tunnel, path).await {
                Ok(_) => http(&tunnel, path).await,
                Err(e) => Err(e),
            },
            _ => tcp(&tunnel).await,
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {} s", TIMEOUT.as_secs())));
    match outcome {
        Ok((rtt, detail)) => {
            result.ok = true;
            result.rtt_ms = (!rtt.is_zero()).then_some(rtt.as_secs_f64() * 1000.0);
            result.detail = detail;
        }
        Err(e) => result.detail = e,
    }
    result
}

/// A tunnel from here to `address` (`ip:port`) as seen from `via`.
pub async fn open(pool: &Pool, via: &Host, address: &str) -> Result<Tunnel, String> {
    let (ip, port) = address
        .rsplit_once(':')
        .and_then(|(ip, p)| p.parse::<u16>().ok().map(|p| (ip, p)))
        .ok_or_else(|| format!("{address:?} is not ip:port"))?;
    pool.tunnel(&pool.target(via), ip, port)
        .await
        .map_err(|s| s.explain(&via.hostname))
}

/// A PostgreSQL session through `tunnel`, as the superuser the modules set up.
pub async fn pg_connect(
    tunnel: &Tunnel,
    password: Option<&str>,
) -> Result<tokio_postgres::Client, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(tunnel.local.ip().to_string())
        .port(tunnel.local.port())
        .user("postgres")
        .dbname("postgres")
        .application_name("kbz")
        .connect_timeout(TIMEOUT);
    if let Some(p) = password {
        config.password(p);
    }
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| pg_error(&e))?;
    tokio::spawn(connection);
    Ok(client)
}

/// tokio-postgres' Display leaves out the server's message ("db error"); this keeps it.
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

async fn postgres(
    tunnel: &Tunnel,
    password: Option<&str>,
    hosts: &[(String, String)],
) -> Result<(Duration, String), String> {
    let client = pg_connect(tunnel, password).await?;
    let mut rtts = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| pg_error(&e))?;
        rtts.push(started.elapsed());
    }
    let rtt = median(rtts);
    let row = client
        .query_one("SELECT pg_is_in_recovery(), host(inet_server_addr())", &[])
        .await
        .map_err(|e| pg_error(&e))?;
    let standby: bool = row.try_get(0).map_err(|e| pg_error(&e))?;
    let server: Option<String> = row.try_get(1).map_err(|e| pg_error(&e))?;
    let on = server.map_or_else(|| "?".into(), |s| super::host_name(&s, hosts));
    if standby {
        return Err(format!(
            "reaches {on}, a standby (read-only): writes would fail"
        ));
    }
    Ok((rtt, format!("primary on {on}")))
}

/// The middle of three round trips: the first on a new connection can wait behind the
/// client's own setup commands.
fn median(mut rtts: Vec<Duration>) -> Duration {
    rtts.sort();
    rtts.get(rtts.len() / 2).copied().unwrap_or_default()
}

/// A Redis connection through `tunnel`, authenticated when a password is known.
pub async fn redis_connect(
    tunnel: &Tunnel,
    password: Option<&str>,
) -> Result<redis::aio::MultiplexedConnection, String> {
    use redis::IntoConnectionInfo;
    let mut settings = redis::RedisConnectionInfo::default();
    if let Some(p) = password {
        settings = settings.set_password(p);
    }
    let info = redis::ConnectionAddr::Tcp(tunnel.local.ip().to_string(), tunnel.local.port())
        .into_connection_info()
        .map_err(|e| e.to_string())?
        .set_redis_settings(settings);
    let client = redis::Client::open(info).map_err(|e| e.to_string())?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())
}

/// The server-side address of this connection (`CLIENT INFO`'s `laddr`): which node answered,
/// even behind a load balancer.
pub async fn redis_served_by(
    conn: &mut redis::aio::MultiplexedConnection,
    hosts: &[(String, String)],
) -> Option<String> {
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(conn)
        .await
        .ok()?;
    let laddr = info
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("laddr="))?;
    Some(super::host_name(laddr, hosts))
}

async fn redis_check(
    tunnel: &Tunnel,
    password: Option<&str>,
    hosts: &[(String, String)],
) -> Result<(Duration, String), String> {
    let mut conn = redis_connect(tunnel, password).await?;
    let mut rtts = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        rtts.push(started.elapsed());
        if pong != "PONG" {
            return Err(format!("PING answered {pong:?}"));
        }
    }
    let rtt = median(rtts);
    let role: Vec<redis::Value> = redis::cmd("ROLE")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let role = match role.first() {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s.clone(),
        _ => "?".into(),
    };
    let on = redis_served_by(&mut conn, hosts)
        .await
        .unwrap_or_else(|| "?".into());
    if role != "master" {
        return Err(format!("reaches {on}, a {role}: writes would fail"));
    }
    Ok((rtt, format!("master on {on}")))
}

/// An HTTP `HEAD /path`: the status line (5xx fails), and its round trip.
async fn http(tunnel: &Tunnel, path: &str) -> Result<(Duration, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(tunnel.local)
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    s.write_all(format!("HEAD /{path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256];
    let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
    let rtt = started.elapsed();
    let text = String::from_utf8_lossy(&buf[..n]);
    match text.lines().next() {
        Some(line) if line.starts_with("HTTP/") => {
            let line = line.trim().to_string();
            match line.split_whitespace().nth(1) {
                Some(code) if code.starts_with('5') => Err(line),
                _ => Ok((rtt, line)),
            }
        }
        _ => Err("connection closed without an HTTP answer".into()),
    }
}

/// Whether something accepts connections. The tunnel itself accepts at once, so the remote
/// side's refusal shows as an immediate close; no round trip to time without a protocol.
async fn tcp(tunnel: &Tunnel) -> Result<(Duration, String), String> {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(tunnel.local)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
        Ok(Ok(0)) => Err("connection closed at once (refused?)".into()),
        Ok(Err(e)) => Err(e.to_string()),
        _ => Ok((Duration::ZERO, "accepts connections".into())),
    }
}
