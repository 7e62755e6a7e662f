//! How a watcher's stream to a service is opened: on the host's SSH connection in the
//! product; the protocols (`http`, `resp`) only see a byte stream, so that their handling of
//! what a service really sends (garbage, a 503, a reply cut short, silence) is testable on
//! any stream.

use crate::ssh::{Pool, Target};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to a service.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

type Open = dyn Fn() -> BoxFuture<'static, Result<Box<dyn Io>, String>> + Send + Sync;

/// Opens a new stream to one service each time it is called.
#[derive(Clone)]
pub struct Dial {
    open: Arc<Open>,
    /// `address:port`, for messages.
    pub what: String,
}

impl Dial {
    /// `address:port` as `target` reaches it (a direct-tcpip channel on its connection).
    pub fn tcp(pool: &Pool, target: Target, address: &str, port: u16) -> Dial {
        let pool = pool.clone();
        let address = address.to_string();
        Dial {
            what: format!("{address}:{port}"),
            open: Arc::new(move || {
                let (pool, target, address) = (pool.clone(), target.clone(), address.clone());
                Box::pin(async move {
                    let s = pool.open_tcp(&target, &address, port).await?;
                    Ok(Box::new(s) as Box<dyn Io>)
                })
            }),
        }
    }

    /// Any other way to open the stream (tests speak to the protocols over in-memory pipes).
    pub fn with(
        what: &str,
        open: impl Fn() -> BoxFuture<'static, Result<Box<dyn Io>, String>> + Send + Sync + 'static,
    ) -> Dial {
        Dial {
            open: Arc::new(open),
            what: what.to_string(),
        }
    }

    pub async fn open(&self) -> Result<Box<dyn Io>, String> {
        (self.open)().await
    }
}
