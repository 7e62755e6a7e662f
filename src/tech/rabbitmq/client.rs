//! RabbitMQ's client side, for the endpoint check and the failover workload: AMQP 0-9-1
//! connections (lapin) through an SSH tunnel, as module 5's `kbz` user.

use super::QUEUE;
use crate::ssh::Tunnel;
use futures_util::future::BoxFuture;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use std::time::{Duration, Instant};

/// Module 5's administrator, whose password is the `rabbitmq_password` secret.
pub const USER: &str = "kbz";

/// A connection through `tunnel` and a channel on it, within `timeout`. Heartbeats every 5 s:
/// a connection whose node vanished without a word is noticed.
pub async fn amqp_connect(
    tunnel: &Tunnel,
    password: Option<&str>,
    timeout: Duration,
) -> Result<(Connection, Channel), String> {
    let password = password.ok_or("no rabbitmq_password secret: install module 5 first")?;
    let uri = format!(
        "amqp://{USER}:{password}@{}/%2f?heartbeat=5&connection_timeout={}",
        tunnel.local,
        timeout.as_millis()
    );
    let open = async {
        let c = Connection::connect(&uri, ConnectionProperties::default())
            .await
            .map_err(|e| amqp_error(&e, password))?;
        let ch = c
            .create_channel()
            .await
            .map_err(|e| amqp_error(&e, password))?;
        Ok((c, ch))
    };
    tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| format!("no AMQP connection within {} ms", timeout.as_millis()))?
}

/// An error's text, never with the password in it (a URI may be quoted back).
pub fn amqp_error(e: &lapin::Error, password: &str) -> String {
    e.to_string().replace(password, "<rabbitmq_password>")
}

/// The endpoint check: three passive declarations of the failover queue (round trips to the
/// queue's leader), and what it holds.
pub fn check<'a>(
    tunnel: &'a Tunnel,
    password: Option<&'a str>,
    _hosts: &'a [(String, String)],
) -> BoxFuture<'a, Result<(Duration, String), String>> {
    Box::pin(checked(tunnel, password))
}

async fn checked(tunnel: &Tunnel, password: Option<&str>) -> Result<(Duration, String), String> {
    let (conn, ch) = amqp_connect(tunnel, password, Duration::from_secs(3)).await?;
    let hide = password.unwrap_or_default();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let mut rtts = Vec::new();
    let mut ready = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let q = ch
            .queue_declare(QUEUE.into(), passive, FieldTable::default())
            .await
            .map_err(|e| format!("queue {QUEUE}: {}", amqp_error(&e, hide)))?;
        rtts.push(started.elapsed());
        ready = q.message_count();
    }
    let _ = conn.close(200, "kbz endpoint check".into()).await;
    Ok((
        crate::probe::median(rtts),
        format!("queue {QUEUE} reachable, {ready} message(s) ready"),
    ))
}
