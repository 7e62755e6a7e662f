//! A Patroni member read natively: the cluster as its own etcd has it (see `dcs`), its own
//! `/patroni`, and its etcd's `/health`, over kept-alive HTTP streams.

use super::dcs;
use super::view::EtcdHealth;
use crate::ssh::{Pool, Target};
use crate::watch::http::Http;
use crate::watch::{ASK, Ask, Reader, Section};
use futures_util::future::BoxFuture;

pub struct Member {
    /// Patroni's REST API listens on the host's address, not on loopback.
    pub rest: Http,
    pub etcd: Http,
    pub ip: String,
    pub scope: String,
    /// The last `/patroni`, kept between the seldom asks.
    pub own_cache: String,
}

impl Reader for Member {
    fn read<'a>(&'a mut self, _: &'a Pool, _: &'a Target, ask: Ask) -> BoxFuture<'a, Vec<Section>> {
        Box::pin(self.read_now(ask))
    }
}

impl Member {
    /// Sections: the DCS's `/cluster`, its `/config`, etcd's health (a full probe only), the
    /// member's own `/patroni`.
    async fn read_now(&mut self, ask: Ask) -> Vec<Section> {
        let dcs = match self.etcd.get(&dcs::keys_path(&self.scope), ASK).await {
            Ok(r) if r.status == 200 => dcs::cluster_and_config(&r.text()),
            Ok(r) => Err(format!(
                "GET {}: HTTP {}",
                dcs::keys_path(&self.scope),
                r.status
            )),
            Err(e) => Err(e),
        };
        let (cluster, config) = match dcs {
            Ok((c, k)) => (Ok(c), Ok(k)),
            Err(e) => (Err(e.clone()), Err(e)),
        };
        // The member's own tags, from Patroni itself: a thread on the host per ask, so only
        // when `own`. `/patroni` answers 503 on a member that is not running: its tags still
        // count.
        if ask.own {
            self.own_cache = self
                .rest
                .get("/patroni", ASK)
                .await
                .map(|r| r.text())
                .unwrap_or_default();
        }
        let health = if ask.quick {
            String::new()
        } else {
            let h = etcd_health(&mut self.etcd, &self.ip).await;
            serde_json::to_string(&[serde_json::json!({
                "endpoint": h.endpoint, "health": h.health, "error": h.error,
            })])
            .unwrap_or_default()
        };
        vec![cluster, config, Ok(health), Ok(self.own_cache.clone())]
    }
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
