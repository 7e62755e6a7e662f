//! Redis's client side, for the endpoint check and the failover workload: connections through
//! an SSH tunnel, and which node answered.

use crate::ssh::Tunnel;
use futures_util::future::BoxFuture;
use std::time::{Duration, Instant};

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
    Some(crate::probe::host_name(laddr, hosts))
}

/// The endpoint check: three `PING` round trips, then whether it reaches the master.
pub fn check<'a>(
    tunnel: &'a Tunnel,
    password: Option<&'a str>,
    hosts: &'a [(String, String)],
) -> BoxFuture<'a, Result<(Duration, String), String>> {
    Box::pin(checked(tunnel, password, hosts))
}

async fn checked(
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
    let rtt = crate::probe::median(rtts);
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
