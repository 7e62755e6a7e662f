//! What every technology's failover workload is (each one's in its folder, `NAME/workload.rs`):
//! a writer whose writes have unique ids and an outcome, and a read back of what is there
//! after the test; with the tunnels its clients go through.

use crate::inventory::{Cluster, Fleet, Host};
use crate::ssh::{Pool, Tunnel};
use futures_util::future::BoxFuture;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// An operation gives up after this long: its outcome is then unknown.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);

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

/// One write's outcome, the node that served it, and the error.
pub type Written = (Outcome, Option<String>, Option<String>);

/// Each member's own ids after a test, or why it could not be read.
pub type MemberIds = Vec<(String, Result<Vec<u64>, String>)>;

/// A technology's failover workload: its writes, through the path its clients take.
pub trait Writer: Send {
    /// Prepares what the writes need (a table).
    fn setup(&mut self) -> BoxFuture<'_, Result<(), String>>;
    /// Writes `id`.
    fn write(&mut self, id: u64) -> BoxFuture<'_, Written>;
    /// Every id present now, read from the current leader, and which node that was; an id
    /// as many times as it is there (AMQP delivers at least once).
    fn read_back(&mut self) -> BoxFuture<'_, Result<(String, Vec<u64>), String>>;
    /// Every id present on each member, read on each, before `read_back` (which may clean
    /// up): where one member can lack what another acknowledged (Galera's multi-master).
    /// Empty where the leader's read back says it all.
    fn read_members(&mut self) -> BoxFuture<'_, MemberIds> {
        Box::pin(async { Vec::new() })
    }
}

/// What a technology's workload starts from.
pub struct Start<'a> {
    pub pool: &'a Pool,
    pub fleet: &'a Fleet,
    /// The host the client's tunnels go through.
    pub via: &'a Host,
    pub cluster: &'a Cluster,
    /// The ENV's secrets, by name.
    pub secrets: &'a BTreeMap<String, String>,
    /// The fleet's endpoints (the load balancers' addresses), by name.
    pub endpoints: &'a BTreeMap<String, String>,
    /// The run's id (keys and rows are the run's own).
    pub run: &'a str,
}

impl Start<'_> {
    /// The load balancers' address for the first endpoint whose name has `word`, as
    /// (ip, port); `what` names it in the error.
    pub fn endpoint(&self, word: &str, what: &str) -> Result<(String, u16), String> {
        let address = self
            .endpoints
            .iter()
            .find(|(n, _)| n.contains(word))
            .map(|(_, a)| a.clone())
            .ok_or_else(|| {
                format!(
                    "no {what} endpoint: install the load-balancer module (kbz install --module 8)"
                )
            })?;
        address
            .rsplit_once(':')
            .and_then(|(ip, p)| p.parse::<u16>().ok().map(|p| (ip.to_string(), p)))
            .ok_or_else(|| format!("{address:?} is not ip:port"))
    }
}

/// Every host's name and private address, for naming the node that served a write.
pub fn hosts_of(fleet: &Fleet) -> Vec<(String, String)> {
    fleet
        .hosts
        .iter()
        .map(|h| (h.hostname.clone(), h.ip_private.to_string()))
        .collect()
}

/// Tunnels from the via host, one per remote address, made on first use.
pub struct Tunnels {
    pool: Pool,
    via: Host,
    open: HashMap<(String, u16), Tunnel>,
}

impl Tunnels {
    pub fn new(pool: &Pool, via: &Host) -> Tunnels {
        Tunnels {
            pool: pool.clone(),
            via: via.clone(),
            open: HashMap::new(),
        }
    }

    pub async fn to(&mut self, ip: &str, port: u16) -> Result<&Tunnel, String> {
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
