//! Byte streams to a service as the host itself sees it, carried on the host's one pooled
//! connection: a direct-tcpip channel to `address:port`, or a direct-streamlocal channel to a
//! unix socket (OpenSSH's extension). No process runs on the host for either: sshd connects
//! for us. The watchers speak the services' own protocols over them.
//!
//! These channels take no exec permit: OpenSSH's MaxSessions counts session channels (shells,
//! commands), not forwarded ones, so a watcher's long-lived stream never holds a command back.

use super::client::ConnState;
use super::pool::Pool;
use super::target::Target;

/// A stream to a service, readable and writable with tokio's traits.
pub type ServiceStream = russh::ChannelStream<russh::client::Msg>;

impl Pool {
    /// `address:port` as `target` reaches it (`127.0.0.1` is the target's own loopback).
    pub async fn open_tcp(
        &self,
        target: &Target,
        address: &str,
        port: u16,
    ) -> Result<ServiceStream, String> {
        let conn = self
            .connection(target)
            .await
            .map_err(|s| s.explain(&target.alias))?;
        let channel = conn
            .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
            .await
            .map_err(|e| self.channel_failed(target, &conn, &format!("{address}:{port}"), e))?;
        Ok(channel.into_stream())
    }

    /// The unix socket at `path` on `target`.
    pub async fn open_unix(&self, target: &Target, path: &str) -> Result<ServiceStream, String> {
        let conn = self
            .connection(target)
            .await
            .map_err(|s| s.explain(&target.alias))?;
        let channel = conn
            .channel_open_direct_streamlocal(path)
            .await
            .map_err(|e| self.channel_failed(target, &conn, path, e))?;
        Ok(channel.into_stream())
    }

    /// Why a channel did not open. A refusal (nothing listens there) is the service's state,
    /// not the host's; a closed connection is the host's, and says so in its state.
    fn channel_failed(
        &self,
        target: &Target,
        conn: &super::client::Conn,
        what: &str,
        e: russh::Error,
    ) -> String {
        if conn.is_closed() {
            self.lost(target, "connection closed");
            return ConnState::Down {
                reason: "connection closed".into(),
            }
            .explain(&target.alias);
        }
        format!("{what}: {e}")
    }
}
