//! RabbitMQ's failover workload: each write a persistent message with the run's name and its
//! id, published to the quorum queue `kbz.failover` through the load balancers' address with
//! publisher confirms, one in flight; a new connection after any error, as applications
//! reconnect. ok = confirmed, fail = refused (nacked, unroutable, or no connection to send
//! on), unknown = sent but neither confirmed nor refused in time. The read back drains the
//! queue (`basic.get` until empty) through the same address, which reaches only nodes that
//! serve, so nodes of the majority.

use super::QUEUE;
use super::client::{amqp_connect, amqp_error};
use crate::tech::workload::{OP_TIMEOUT, Outcome, Start, Tunnels, Writer, Written};
use futures_util::future::BoxFuture;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection};

/// The workload through the fleet's AMQP endpoint (the load-balancer module's).
pub fn start(s: &Start) -> Result<Box<dyn Writer>, String> {
    let (ip, port) = s.endpoint("amqp", "AMQP")?;
    Ok(Box::new(AmqpWriter {
        tunnels: Tunnels::new(s.pool, s.via),
        address: (ip, port),
        password: s.secrets.get("rabbitmq_password").cloned(),
        run: s.run.to_string(),
        conn: None,
    }))
}

struct AmqpWriter {
    tunnels: Tunnels,
    /// The load balancers' address (ip, port).
    address: (String, u16),
    password: Option<String>,
    run: String,
    /// The connection (kept so that dropping the writer closes it) and its confirming channel.
    conn: Option<(Connection, Channel)>,
}

impl Writer for AmqpWriter {
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.setup_now())
    }

    fn write(&mut self, id: u64) -> BoxFuture<'_, Written> {
        Box::pin(self.write_now(id))
    }

    fn read_back(&mut self) -> BoxFuture<'_, Result<(String, Vec<u64>), String>> {
        Box::pin(self.read_back_now())
    }
}

impl AmqpWriter {
    fn hide(&self, e: &lapin::Error) -> String {
        amqp_error(e, self.password.as_deref().unwrap_or_default())
    }

    /// The confirming channel, connected anew when there is none.
    async fn channel(&mut self, confirms: bool) -> Result<Channel, String> {
        if let Some((_, ch)) = &self.conn
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        self.conn = None;
        let (ip, port) = self.address.clone();
        let t = self.tunnels.to(&ip, port).await?;
        let (c, ch) = amqp_connect(t, self.password.as_deref(), OP_TIMEOUT).await?;
        if confirms {
            let on = ch.confirm_select(Default::default());
            match tokio::time::timeout(OP_TIMEOUT, on).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(self.hide(&e)),
                Err(_) => return Err("confirm.select: no answer".into()),
            }
        }
        self.conn = Some((c, ch.clone()));
        Ok(ch)
    }

    /// The queue module 5 declared is there; what earlier runs left in it is gone.
    async fn setup_now(&mut self) -> Result<(), String> {
        let ch = self.channel(true).await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        ch.queue_declare(QUEUE.into(), passive, FieldTable::default())
            .await
            .map_err(|e| format!("queue {QUEUE} (module 5 declares it): {}", self.hide(&e)))?;
        ch.queue_purge(QUEUE.into(), QueuePurgeOptions::default())
            .await
            .map_err(|e| format!("purging {QUEUE}: {}", self.hide(&e)))?;
        Ok(())
    }

    async fn write_now(&mut self, id: u64) -> Written {
        let ch = match self.channel(true).await {
            Ok(ch) => ch,
            Err(e) => return (Outcome::Fail, None, Some(e)),
        };
        let body = format!("{} {id}", self.run);
        let mandatory = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let persistent = BasicProperties::default().with_delivery_mode(2);
        let sent = async {
            let confirm = ch
                .basic_publish(
                    "".into(),
                    QUEUE.into(),
                    mandatory,
                    body.as_bytes(),
                    persistent,
                )
                .await
                // Not sent: the channel was already closed.
                .map_err(|e| (Outcome::Fail, self.hide(&e)))?;
            confirm.await.map_err(|e| (Outcome::Unknown, self.hide(&e)))
        };
        let written = match tokio::time::timeout(OP_TIMEOUT, sent).await {
            Ok(Ok(Confirmation::Ack(None))) => return (Outcome::Ok, None, None),
            Ok(Ok(Confirmation::Ack(Some(_)))) => (
                Outcome::Fail,
                None,
                Some(format!("unroutable: no queue {QUEUE}")),
            ),
            Ok(Ok(Confirmation::Nack(_))) => (Outcome::Fail, None, Some("nacked".into())),
            Ok(Ok(Confirmation::NotRequested)) => {
                (Outcome::Unknown, None, Some("confirms were off".into()))
            }
            Ok(Err((outcome, e))) => (outcome, None, Some(e)),
            Err(_) => (Outcome::Unknown, None, Some("no confirm within 1 s".into())),
        };
        // A new connection for the next write: this one's fate is unknown.
        self.conn = None;
        written
    }

    /// Every message of the queue, taken (auto-acknowledged) until it is empty; this run's
    /// ids, as many times as each was there.
    async fn read_back_now(&mut self) -> Result<(String, Vec<u64>), String> {
        self.conn = None;
        let ch = self.channel(false).await?;
        let mut ids = Vec::new();
        let take = BasicGetOptions { no_ack: true };
        while let Some(m) = ch
            .basic_get(QUEUE.into(), take)
            .await
            .map_err(|e| format!("basic.get: {}", self.hide(&e)))?
        {
            let text = String::from_utf8_lossy(&m.delivery.data);
            if let Some((run, id)) = text.split_once(' ')
                && run == self.run
                && let Ok(id) = id.parse()
            {
                ids.push(id);
            }
        }
        let (ip, port) = &self.address;
        Ok((format!("{ip}:{port}"), ids))
    }
}
