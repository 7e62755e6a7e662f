//! HTTP/1.1 GETs to a service on a host, over one kept-alive SSH-forwarded stream (hyper's
//! client connection API does the protocol). The stream is opened on first use and again
//! after any failure: a refused connection, a reset, a half-open tunnel that stops answering
//! (the timeout drops it), a service restarting mid-response.

use super::dial::Dial;
use crate::ssh::{Pool, Target};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Larger bodies are garbage to us (Patroni's `/cluster` is about 1 kB a member).
const MAX_BODY: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Http {
    dial: Dial,
    /// The `Authorization` header every request carries (RabbitMQ's API: HTTP Basic).
    authorization: Option<String>,
    sender: Option<SendRequest<Empty<Bytes>>>,
    /// Drives the connection; aborted with it.
    driver: Option<JoinHandle<()>>,
}

impl Drop for Http {
    fn drop(&mut self) {
        self.reset();
    }
}

impl Http {
    /// `address:port` as `target` reaches it.
    pub fn new(pool: &Pool, target: Target, address: &str, port: u16) -> Http {
        Http::over(Dial::tcp(pool, target, address, port))
    }

    /// Over streams `dial` opens.
    pub fn over(dial: Dial) -> Http {
        Http {
            dial,
            authorization: None,
            sender: None,
            driver: None,
        }
    }

    /// Every request from now on authenticates as `user` with `password` (HTTP Basic); None:
    /// anonymously.
    pub fn set_basic_auth(&mut self, credentials: Option<(&str, &str)>) {
        use base64::Engine;
        self.authorization = credentials.map(|(user, password)| {
            let pair = format!("{user}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
    }

    fn reset(&mut self) {
        self.sender = None;
        if let Some(d) = self.driver.take() {
            d.abort();
        }
    }

    /// `GET path`, its status and body, within `timeout` (connecting included).
    pub async fn get(&mut self, path: &str, timeout: Duration) -> Result<Response, String> {
        match tokio::time::timeout(timeout, self.exchange(path)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.reset();
                Err(e)
            }
            Err(_) => {
                self.reset();
                Err(format!(
                    "{}{path}: no answer within {:.1} s",
                    self.dial.what,
                    timeout.as_secs_f64()
                ))
            }
        }
    }

    async fn exchange(&mut self, path: &str) -> Result<Response, String> {
        let authority = self.dial.what.clone();
        let mut request = hyper::Request::get(path).header(hyper::header::HOST, &authority);
        if let Some(a) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, a);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("{authority}{path}: {e}"))?;
        let sender = self.ready().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{authority}{path}: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("{authority}{path}: body: {e}"))?
            .to_bytes();
        Ok(Response { status, body })
    }

    /// The kept-alive connection, opened if there is none or it closed.
    async fn ready(&mut self) -> Result<&mut SendRequest<Empty<Bytes>>, String> {
        let alive = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !alive {
            self.reset();
            let stream = self.dial.open().await?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("{}: {e}", self.dial.what))?;
            self.driver = Some(tokio::spawn(async move {
                // Its end (the service closed, or we dropped it) shows on the next request.
                let _ = conn.await;
            }));
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| format!("{}: not connected", self.dial.what))
    }
}
