//! Local port forwarding over the host's pooled connection (direct-tcpip): the failover
//! workloads and endpoint checks reach the fleet's private addresses through it, as the
//! operator's laptop cannot reach them directly.

use super::client::ConnState;
use super::pool::Pool;
use super::target::Target;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A listening local port forwarding to `remote` as seen from the SSH host. Dropping it
/// closes the listener; connections already made run to their end.
pub struct Tunnel {
    pub local: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Pool {
    /// Opens `127.0.0.1:<free port>` here; each connection to it becomes a direct-tcpip
    /// channel to `remote_host:remote_port` from `target`, on the target's one connection.
    pub async fn tunnel(
        &self,
        target: &Target,
        remote_host: &str,
        remote_port: u16,
    ) -> Result<Tunnel, ConnState> {
        // Connect now, so that an unreachable host fails here rather than at first use.
        self.connection(target).await?;
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| ConnState::Down {
                reason: format!("local listener: {e}"),
            })?;
        let local = listener.local_addr().map_err(|e| ConnState::Down {
            reason: format!("local listener: {e}"),
        })?;
        let pool = self.clone();
        let target = target.clone();
        let remote_host = remote_host.to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, peer)) = listener.accept().await {
                // Request/response protocols through the tunnel must not wait on Nagle.
                let _ = socket.set_nodelay(true);
                let pool = pool.clone();
                let target = target.clone();
                let remote_host = remote_host.clone();
                tokio::spawn(async move {
                    let Ok(lease) = pool.lease(&target).await else {
                        return;
                    };
                    let channel = lease
                        .conn
                        .channel_open_direct_tcpip(
                            remote_host,
                            u32::from(remote_port),
                            peer.ip().to_string(),
                            u32::from(peer.port()),
                        )
                        .await;
                    if let Ok(channel) = channel {
                        let mut stream = channel.into_stream();
                        let _ = tokio::io::copy_bidirectional(&mut socket, &mut stream).await;
                    }
                    drop(lease.permit);
                });
            }
        });
        Ok(Tunnel { local, task })
    }
}
