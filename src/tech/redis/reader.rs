//! A Redis member read natively: its Sentinel's view over RESP, and its data node's own
//! `INFO replication` (what Sentinel will find when it asks), on kept-alive streams.

use crate::ssh::{Pool, Target};
use crate::watch::resp::Resp;
use crate::watch::{ASK, Ask, Reader, Section};
use futures_util::future::BoxFuture;
use std::time::{Duration, Instant};

/// Where the data nodes keep the password kbz's watcher authenticates with (written by the
/// Redis module, root-only): read once per connection, never logged.
pub const PASSWORD_FILE: &str = "/etc/kbz/secrets/redis_password";

pub struct Member {
    pub sentinel: Resp,
    pub node: Resp,
    /// The master's name in Sentinel: the cluster's.
    pub name: String,
    /// When the password was last read from the host (never more than once a minute).
    pub password_read: Option<Instant>,
}

impl Reader for Member {
    fn read<'a>(
        &'a mut self,
        pool: &'a Pool,
        target: &'a Target,
        _: Ask,
    ) -> BoxFuture<'a, Vec<Section>> {
        Box::pin(self.read_now(pool, target))
    }
}

impl Member {
    /// Sections: `SENTINEL MASTER`, `REPLICAS`, `SENTINELS`, `CKQUORUM`, `MYID`, `INFO
    /// sentinel`, then the data node's `INFO replication`.
    async fn read_now(&mut self, pool: &Pool, target: &Target) -> Vec<Section> {
        if self.password_read.is_none() {
            self.password_read = Some(Instant::now());
            let password = read_password(pool, target).await;
            self.sentinel.set_password(password.clone());
            self.node.set_password(password);
        }
        let name = self.name.as_str();
        let sentinel_cmds = [
            vec!["SENTINEL", "MASTER", name],
            vec!["SENTINEL", "REPLICAS", name],
            vec!["SENTINEL", "SENTINELS", name],
            vec!["SENTINEL", "CKQUORUM", name],
            vec!["SENTINEL", "MYID"],
            vec!["INFO", "sentinel"],
        ];
        let mut out: Vec<Section> = Vec::new();
        for args in &sentinel_cmds {
            let answer = self.sentinel.text(&command(args), ASK).await;
            let failed = answer.is_err();
            out.push(answer);
            if failed {
                // The Sentinel is not answering: the rest would not either.
                let e = out.last().cloned().unwrap_or(Ok(String::new()));
                out.resize(sentinel_cmds.len(), e);
                break;
            }
        }
        out.push(
            self.node
                .text(&command(&["INFO", "replication"]), ASK)
                .await,
        );
        // Refused: the password changed (a reinstall); read it again, once a minute.
        let refused = |t: &Section| {
            let (Ok(t) | Err(t)) = t;
            t.contains("NOAUTH") || t.contains("WRONGPASS")
        };
        if out.iter().any(refused)
            && self
                .password_read
                .is_some_and(|at| at.elapsed() > Duration::from_secs(60))
        {
            self.password_read = None;
        }
        out
    }
}

fn command(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// The Redis password from the host (see `watch::secret`).
pub async fn read_password(pool: &Pool, target: &Target) -> Option<String> {
    crate::watch::secret(pool, target, PASSWORD_FILE).await
}
