//! What each member of a cluster says, read natively: its own services asked in their own
//! protocols over its SSH connection, on kept-alive streams, with no process started on the
//! host. A member's reading is the same list of sections the CLI path prints, so one parser
//! per technology reads both.

use super::http::Http;
use super::resp::Resp;
use super::shell::Shell;
use crate::inventory::{Cluster, Fleet, Technology};
use crate::probe::dcs;
use crate::probe::patroni::EtcdHealth;
use crate::ssh::{Pool, Target};
use std::time::{Duration, Instant};

/// One request's limit: a member slower than this is marked with the reason, not waited for.
const ASK: Duration = Duration::from_secs(1);

/// Where the data nodes keep the password kbz's watcher authenticates with (written by the
/// Redis module, root-only): read once per connection, never logged.
const REDIS_PASSWORD_FILE: &str = "/etc/kbz/secrets/redis_password";

const HAPROXY_SOCKET: &str = "/run/haproxy/admin.sock";
/// More than this is not a stats table.
const MAX_STATS: u64 = 4 << 20;

/// A member's kept-alive connections to its own services.
pub enum Member {
    Patroni {
        /// Patroni's REST API listens on the host's address, not on loopback.
        rest: Http,
        etcd: Http,
        ip: String,
        scope: String,
        /// The last `/patroni`, kept between the seldom asks.
        own_cache: String,
    },
    Haproxy {
        target: Target,
        /// For the host's addresses (who holds the floating one).
        shell: Shell,
    },
    Redis {
        sentinel: Resp,
        node: Resp,
        name: String,
        /// When the password was last read from the host (never more than once a minute).
        password_read: Option<Instant>,
    },
}

impl Member {
    /// The member `host` of `cluster`, for technologies read natively.
    pub fn new(pool: &Pool, fleet: &Fleet, cluster: &Cluster, host: &str) -> Option<Member> {
        let h = fleet.host(host)?;
        let target = pool.target(h);
        let ip = h.ip_private.to_string();
        match cluster.technology {
            Technology::Patroni => Some(Member::Patroni {
                rest: Http::new(pool, target.clone(), &ip, 8008),
                etcd: Http::new(pool, target, &ip, 2379),
                ip,
                scope: cluster.name.clone(),
                own_cache: String::new(),
            }),
            Technology::Redis => Some(Member::Redis {
                sentinel: Resp::new(pool, target.clone(), "127.0.0.1", 26379, None),
                node: Resp::new(pool, target, "127.0.0.1", 6379, None),
                name: cluster.name.clone(),
                password_read: None,
            }),
            Technology::Haproxy => Some(Member::Haproxy {
                shell: Shell::new(pool, target.clone()),
                target,
            }),
            _ => None,
        }
    }

    /// Its reading: sections in the order the technology's parser takes them (an empty one
    /// for a service that did not answer). `quick` leaves out what only a full probe needs.
    /// `own`: also what the member says of itself where asking costs the host (Patroni).
    pub async fn read(
        &mut self,
        pool: &Pool,
        target: &Target,
        quick: bool,
        own: bool,
    ) -> Vec<String> {
        match self {
            Member::Patroni {
                rest,
                etcd,
                ip,
                scope,
                own_cache,
            } => {
                // The cluster as this member's own etcd has it (see probe::dcs).
                let (cluster, config) = match etcd.get(&dcs::keys_path(scope), ASK).await {
                    Ok(r) if r.status == 200 => {
                        dcs::cluster_and_config(&r.text()).unwrap_or_default()
                    }
                    _ => Default::default(),
                };
                // The member's own tags, from Patroni itself: a thread on the host per ask,
                // so only when `own` (see Members).
                // `/patroni` answers 503 on a member that is not running: its tags still count.
                if own {
                    *own_cache = rest
                        .get("/patroni", ASK)
                        .await
                        .map(|r| r.text())
                        .unwrap_or_default();
                }
                let own = own_cache.clone();
                let health = if quick {
                    String::new()
                } else {
                    let h = etcd_health(etcd, ip).await;
                    serde_json::to_string(&[serde_json::json!({
                        "endpoint": h.endpoint, "health": h.health, "error": h.error,
                    })])
                    .unwrap_or_default()
                };
                vec![cluster, config, health, own]
            }
            Member::Haproxy { target, shell } => {
                let stats = show_stat(pool, target).await.unwrap_or_default();
                let addresses = shell.addresses(ASK * 2).await.unwrap_or_default();
                vec![stats, addresses.join("\n")]
            }
            Member::Redis {
                sentinel,
                node,
                name,
                password_read,
            } => {
                if password_read.is_none() {
                    *password_read = Some(Instant::now());
                    let password = read_password(pool, target).await;
                    sentinel.set_password(password.clone());
                    node.set_password(password);
                }
                let sentinel_cmds = [
                    vec!["SENTINEL", "MASTER", name.as_str()],
                    vec!["SENTINEL", "REPLICAS", name.as_str()],
                    vec!["SENTINEL", "SENTINELS", name.as_str()],
                    vec!["SENTINEL", "CKQUORUM", name.as_str()],
                    vec!["SENTINEL", "MYID"],
                    vec!["INFO", "sentinel"],
                ];
                let mut out = Vec::new();
                let mut errors = Vec::new();
                for args in &sentinel_cmds {
                    match sentinel.text(&command(args), ASK).await {
                        Ok(t) => out.push(t),
                        Err(e) => {
                            // The Sentinel is not answering: the rest would not either.
                            errors.push(e);
                            out.resize(sentinel_cmds.len(), String::new());
                            break;
                        }
                    }
                }
                match node.text(&command(&["INFO", "replication"]), ASK).await {
                    Ok(t) => out.push(t),
                    Err(e) => {
                        errors.push(e);
                        out.push(String::new());
                    }
                }
                // Refused: the password changed (a reinstall); read it again, once a minute.
                let refused = |t: &String| t.contains("NOAUTH") || t.contains("WRONGPASS");
                if (out.iter().any(refused) || errors.iter().any(refused))
                    && password_read.is_some_and(|at| at.elapsed() > Duration::from_secs(60))
                {
                    *password_read = None;
                }
                out
            }
        }
    }
}

/// HAProxy's `show stat` on its stats socket (it answers one command and closes).
async fn show_stat(pool: &Pool, target: &Target) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let read = async {
        let mut s = pool.open_unix(target, HAPROXY_SOCKET).await?;
        s.write_all(b"show stat\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        s.take(MAX_STATS)
            .read_to_end(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(ASK, read)
        .await
        .map_err(|_| format!("{HAPROXY_SOCKET}: no answer within 1 s"))?
}

fn command(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// The member's own etcd: `GET /health` says whether it has a leader and no alarm.
async fn etcd_health(etcd: &mut Http, ip: &str) -> EtcdHealth {
    let endpoint = format!("http://{ip}:2379");
    match etcd.get("/health", ASK).await {
        Ok(r) => {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let healthy = r.status == 200 && v["health"].as_str() == Some("true");
            EtcdHealth {
                endpoint,
                health: healthy,
                error: (!healthy).then(|| match v["reason"].as_str() {
                    Some(reason) if !reason.is_empty() => reason.to_string(),
                    _ => format!("GET /health: HTTP {}", r.status),
                }),
            }
        }
        Err(e) => EtcdHealth {
            endpoint,
            health: false,
            error: Some(e),
        },
    }
}

/// The Redis password from the host (one small read when a connection is made, not per
/// probe). None when the file is not there: the servers then need none.
pub(super) async fn read_password(pool: &Pool, target: &Target) -> Option<String> {
    let text = pool
        .probe_stdout(
            target,
            format!("cat {REDIS_PASSWORD_FILE} 2>/dev/null"),
            ASK * 5,
            "reading the Redis password",
        )
        .await
        .ok()?;
    let p = text.trim();
    (!p.is_empty()).then(|| p.to_string())
}
