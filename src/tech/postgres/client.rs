//! PostgreSQL's client side, for the endpoint check and the failover workload (Patroni's and
//! standalone servers alike): sessions through an SSH tunnel, errors with the server's words.

use crate::ssh::Tunnel;
use futures_util::future::BoxFuture;
use std::time::{Duration, Instant};

/// A session that takes longer than this to open is down to its clients too.
const TIMEOUT: Duration = Duration::from_secs(5);

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

/// The endpoint check: three `SELECT 1` round trips, then whether it reaches the primary.
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
    let rtt = crate::probe::median(rtts);
    let row = client
        .query_one("SELECT pg_is_in_recovery(), host(inet_server_addr())", &[])
        .await
        .map_err(|e| pg_error(&e))?;
    let standby: bool = row.try_get(0).map_err(|e| pg_error(&e))?;
    let server: Option<String> = row.try_get(1).map_err(|e| pg_error(&e))?;
    let on = server.map_or_else(|| "?".into(), |s| crate::probe::host_name(&s, hosts));
    if standby {
        return Err(format!(
            "reaches {on}, a standby (read-only): writes would fail"
        ));
    }
    Ok((rtt, format!("primary on {on}")))
}
