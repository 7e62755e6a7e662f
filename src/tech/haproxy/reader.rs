//! An HAProxy member read natively: `show stat` on its stats socket (a direct-streamlocal
//! channel, no process on the host) and the host's addresses (who holds the floating one)
//! from its long-lived shell.

use crate::ssh::{Pool, Target};
use crate::watch::shell::Shell;
use crate::watch::{ASK, Ask, Reader, Section};
use futures_util::future::BoxFuture;

pub const SOCKET: &str = "/run/haproxy/admin.sock";
/// More than this is not a stats table.
const MAX_STATS: u64 = 4 << 20;

pub struct Member {
    pub shell: Shell,
}

impl Reader for Member {
    fn read<'a>(
        &'a mut self,
        pool: &'a Pool,
        target: &'a Target,
        _: Ask,
    ) -> BoxFuture<'a, Vec<Section>> {
        Box::pin(async move {
            let stats = show_stat(pool, target).await;
            let addresses = self.shell.addresses(ASK * 2).await;
            vec![stats, addresses.map(|a| a.join("\n"))]
        })
    }
}

/// HAProxy's `show stat` on its stats socket (it answers one command and closes).
async fn show_stat(pool: &Pool, target: &Target) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let read = async {
        let mut s = pool.open_unix(target, SOCKET).await?;
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
        .map_err(|_| format!("{SOCKET}: no answer within 1 s"))?
}
