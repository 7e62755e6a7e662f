//! Endpoint checks: each service endpoint (service -> address:port, as the load-balancer module
//! recorded it) spoken to in its own protocol through an SSH tunnel, the way an application
//! would: PostgreSQL `SELECT 1` and whether it is the primary, Redis `PING` and `ROLE`; the
//! round-trip time and the node that answered; `spawn` keeps them fresh for the console, every
//! `interval`, reading the endpoints and credentials again each round (an install that records
//! new ones shows without a restart).

use crate::inventory::{Fleet, Host};
use crate::modules::secrets::Secrets;
use crate::ssh::{Pool, Tunnel};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

/// The ENV's secrets (names as the modules' manifests give), for the checks that
/// authenticate: each technology's registry line names the one it needs.
pub struct Credentials {
    pub values: BTreeMap<String, String>,
}

impl Credentials {
    pub fn from_secrets(values: &BTreeMap<String, String>) -> Credentials {
        Credentials {
            values: values.clone(),
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
        let technology = crate::tech::serving(name);
        match technology.and_then(|t| Some((t.endpoint?, t.secret))) {
            Some((check, secret)) => {
                let secret = secret.and_then(|k| creds.values.get(k)).map(String::as_str);
                check(&tunnel, secret, hosts).await
            }
            // The first request also pays for opening the tunnel's channel; time the second.
            None if proto == "http" => match http(&tunnel, path).await {
                Ok(_) => http(&tunnel, path).await,
                Err(e) => Err(e),
            },
            None => tcp(&tunnel).await,
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

/// The console's endpoint checks, every `interval`.
pub fn spawn(
    pool: &Pool,
    fleet: Arc<Fleet>,
    state: PathBuf,
    interval: Duration,
    tx: mpsc::UnboundedSender<Vec<EndpointCheck>>,
) -> JoinHandle<()> {
    let pool = pool.clone();
    tokio::spawn(async move {
        loop {
            let endpoints = endpoints_of(&fleet, &state).unwrap_or_default();
            if !endpoints.is_empty()
                && let Ok(via) = via_host(&fleet, None)
            {
                let creds = Secrets::load(&state, &fleet.env)
                    .map(|s| Credentials::from_secrets(&s.values))
                    .unwrap_or(Credentials {
                        values: Default::default(),
                    });
                let checks = check_all(&pool, &fleet, via, &endpoints, &creds).await;
                if tx.send(checks).is_err() {
                    return;
                }
            }
            tokio::time::sleep(interval).await;
        }
    })
}
