//! Galera's client side, for the endpoint check (and the failover workload): MySQL
//! connections through an SSH tunnel, as module 7's `kbz` user.

use crate::ssh::Tunnel;
use crate::watch::dial::{Dial, Io};
use crate::watch::mysql::Mysql;
use futures_util::future::BoxFuture;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Module 7's workload user, whose password is the `galera_password` secret.
pub const USER: &str = "kbz";

/// A client on connections to `local` (a tunnel's end here).
pub fn over(local: SocketAddr, password: &str) -> Mysql {
    let dial = Dial::with(&local.to_string(), move || {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(local)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Box::new(s) as Box<dyn Io>)
        })
    });
    Mysql::over(dial, USER, password.to_string())
}

/// The endpoint check: which member answers, and whether it is Synced in the Primary
/// component (a non-Primary member also completes a handshake).
pub fn check<'a>(
    tunnel: &'a Tunnel,
    password: Option<&'a str>,
    _hosts: &'a [(String, String)],
) -> BoxFuture<'a, Result<(Duration, String), String>> {
    Box::pin(checked(tunnel, password))
}

async fn checked(tunnel: &Tunnel, password: Option<&str>) -> Result<(Duration, String), String> {
    let password = password.ok_or("no galera_password secret: install module 7 first")?;
    let mut c = over(tunnel.local, password);
    let limit = Duration::from_secs(3);
    let ask = "SELECT @@hostname, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
               WHERE VARIABLE_NAME = 'wsrep_local_state_comment'";
    c.query("SELECT 1", limit)
        .await
        .map_err(|e| e.to_string())?;
    // The first query also paid for the handshake; time the second.
    let started = Instant::now();
    let rows = c.query(ask, limit).await.map_err(|e| e.to_string())?;
    let rtt = started.elapsed();
    let row = rows.first().ok_or("no answer to SELECT @@hostname")?;
    let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let state = cell(1);
    if state != "Synced" {
        return Err(format!("{} answers, but is {state}, not Synced", cell(0)));
    }
    Ok((rtt, format!("MariaDB on {} (Synced)", cell(0))))
}
