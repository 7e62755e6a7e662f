//! The client workload of a failover test: one writer, one operation in flight at a time, each
//! with a unique increasing id, timed on the run's monotonic clock, its outcome ok / fail /
//! unknown and the node that served it. Through the client path real applications use:
//! Sentinel-discovered master for Redis (re-resolved after any error, as Sentinel clients do),
//! the load balancers' address for PostgreSQL; over SSH tunnels with real client libraries.

pub use crate::tech::workload::Outcome;
use crate::tech::workload::Writer;
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

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

/// Writes until `stop` turns true, one operation every `interval` (one in flight), sending
/// each as it ends. Returns the writer, for the read back.
pub async fn run(
    mut writer: Box<dyn Writer>,
    clock: Clock,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Op>,
) -> Box<dyn Writer> {
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
