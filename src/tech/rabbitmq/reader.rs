//! A RabbitMQ member read natively: its management API (nodes, queues, the quorum-critical
//! check) and its Prometheus endpoint (its Raft members' terms and indices), on kept-alive
//! HTTP streams; the partition-handling setting and the monitoring password once per
//! connection and after each restart of the node.

use super::api;
use crate::ssh::{Pool, Target};
use crate::watch::dial::Dial;
use crate::watch::http::{Http, Response};
use crate::watch::{ASK, Ask, Reader, Section};
use futures_util::future::BoxFuture;
use std::time::{Duration, Instant};

/// The monitoring user's password, written by module 5 (root-only).
pub const PASSWORD_FILE: &str = "/etc/kbz/secrets/rabbitmq_monitor_password";
pub const USER: &str = "kbz-monitor";
/// The lines of the node's config kbz's doctor reads.
pub const CONFIG: &str =
    "grep -h -E '^[[:space:]]*cluster_partition_handling' /etc/rabbitmq/rabbitmq.conf 2>/dev/null";
/// Erlang distribution's port: listening while the node's VM runs, even paused.
pub const DIST_PORT: u16 = 25672;

pub struct Member {
    pub api: Http,
    pub metrics: Http,
    pub dist: Dial,
    /// This member's node name (`rabbit@queue-01`).
    pub node: String,
    /// When the password and config were last read (again after a refusal, at most once a
    /// minute, and after the node restarts).
    pub read_at: Option<Instant>,
    pub config: String,
    /// The node's uptime at the last probe: less now means it restarted.
    pub uptime: Option<u64>,
}

impl Member {
    pub fn new(pool: &Pool, target: Target, ip: &str, node: String) -> Member {
        Member {
            api: Http::new(pool, target.clone(), ip, 15672),
            metrics: Http::new(pool, target.clone(), ip, 15692),
            dist: Dial::tcp(pool, target, ip, DIST_PORT),
            node,
            read_at: None,
            config: String::new(),
            uptime: None,
        }
    }
}

impl Reader for Member {
    fn read<'a>(
        &'a mut self,
        pool: &'a Pool,
        target: &'a Target,
        ask: Ask,
    ) -> BoxFuture<'a, Vec<Section>> {
        Box::pin(self.read_now(pool, target, ask))
    }
}

/// A body when the status is one of `ok`, else why not.
fn body(path: &str, r: Result<Response, String>, ok: &[u16]) -> Section {
    match r {
        Ok(r) if ok.contains(&r.status) => Ok(r.text()),
        Ok(r) => Err(format!("GET {path}: HTTP {}", r.status)),
        Err(e) => Err(e),
    }
}

impl Member {
    /// Sections: nodes, queues, the quorum-critical check (full probes), Raft metrics, the
    /// partition-handling config lines, and `listening` when the API does not answer but
    /// the node's VM does (paused, or starting).
    async fn read_now(&mut self, pool: &Pool, target: &Target, ask: Ask) -> Vec<Section> {
        if self.read_at.is_none() {
            self.read_at = Some(Instant::now());
            let password = crate::watch::secret(pool, target, PASSWORD_FILE).await;
            self.api
                .set_basic_auth(password.as_deref().map(|p| (USER, p)));
            self.config = pool
                .probe_stdout(target, CONFIG.to_string(), ASK * 5, "reading rabbitmq.conf")
                .await
                .unwrap_or_default();
        }
        // The node's own word first: it answers even while a silent peer holds the API.
        let metrics = body(
            api::METRICS,
            self.metrics.get(api::METRICS, ASK).await,
            &[200],
        );
        let nodes = body(api::NODES, self.api.get(api::NODES, ASK).await, &[200]);
        self.again_when(&nodes);
        if let Err(e) = &nodes {
            // The API does not answer: the rest of it would not either. A refusal (not
            // silence) may still come from a paused node whose VM runs.
            let vm = if !e.contains("no answer") && self.vm_listening().await {
                "listening"
            } else {
                ""
            };
            let failed = Err(e.clone());
            return vec![
                failed.clone(),
                failed.clone(),
                failed,
                metrics,
                Ok(self.config.clone()),
                Ok(vm.into()),
            ];
        }
        let queues = body(api::QUEUES, self.api.get(api::QUEUES, ASK).await, &[200]);
        let critical = if ask.quick {
            Ok(String::new())
        } else {
            body(
                api::CRITICAL,
                self.api.get(api::CRITICAL, ASK).await,
                &[200, 503],
            )
        };
        vec![
            nodes,
            queues,
            critical,
            metrics,
            Ok(self.config.clone()),
            Ok(String::new()),
        ]
    }

    /// Whether the node's Erlang VM accepts connections on its distribution port.
    async fn vm_listening(&self) -> bool {
        matches!(tokio::time::timeout(ASK, self.dist.open()).await, Ok(Ok(_)))
    }

    /// Reads the password and config again on the next probe when the API refused the
    /// password (a reinstall made a new one: at most once a minute), or the node restarted
    /// (its config may have changed: it is read at start only).
    fn again_when(&mut self, nodes: &Section) {
        let refused = matches!(nodes, Err(e) if e.ends_with("HTTP 401"));
        if refused
            && self
                .read_at
                .is_some_and(|at| at.elapsed() > Duration::from_secs(60))
        {
            self.read_at = None;
        }
        let uptime = nodes
            .as_ref()
            .ok()
            .and_then(|t| api::nodes(t).ok())
            .and_then(|n| n.into_iter().find(|n| n.name == self.node))
            .and_then(|n| n.uptime);
        if let (Some(now), Some(before)) = (uptime, self.uptime)
            && now < before
        {
            self.read_at = None;
        }
        if uptime.is_some() {
            self.uptime = uptime;
        }
    }
}
