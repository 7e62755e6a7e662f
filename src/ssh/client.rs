//! One SSH connection: TCP (or a channel through a jump host), the handshake with kbz's
//! host-key verifier, and authentication (agent, then key files), all under one timeout
//! (russh has none of its own).

use super::known_hosts::{KnownHosts, Verdict};
use super::target::{SshOptions, Target};
use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::key::PrivateKeyWithHashAlg;
use serde::Serialize;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A host's connection as the front ends show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnState {
    Idle,
    Connecting,
    Up { rtt_ms: f64 },
    Down { reason: String },
    AuthFailed { detail: String },
    HostKeyUnknown { key: String },
    HostKeyChanged { expected: Vec<String>, got: String },
    HostKeyRevoked { key: String, at: String },
    HostKeyBadCertificate { reason: String },
}

impl ConnState {
    /// One line for a person, with the fix where there is one.
    pub fn explain(&self, target: &str) -> String {
        match self {
            ConnState::Idle => "not connected".into(),
            ConnState::Connecting => "connecting".into(),
            ConnState::Up { rtt_ms } => format!("up ({rtt_ms:.1} ms)"),
            ConnState::Down { reason } => format!("down: {reason}"),
            ConnState::AuthFailed { detail } => format!("authentication failed: {detail}"),
            ConnState::HostKeyUnknown { key } => format!(
                "host key unknown: {target} presented {key}, which no known_hosts entry records; \
                 check it, then accept it with --accept-new"
            ),
            ConnState::HostKeyChanged { expected, got } => format!(
                "HOST KEY CHANGED for {target}: it presented {got}, known_hosts expects {}. \
                 Someone may be intercepting the connection; nothing was sent. If the host was \
                 really reinstalled, remove the old entry (ssh-keygen -R)",
                expected.join(" or ")
            ),
            ConnState::HostKeyRevoked { key, at } => {
                format!("host key REVOKED: {target} presented {key}, marked @revoked at {at}")
            }
            ConnState::HostKeyBadCertificate { reason } => {
                format!("host certificate refused: {reason}")
            }
        }
    }
}

/// The russh handler: decides on the server's key and remembers why.
pub struct Handler {
    names: Vec<String>,
    port: u16,
    known: Arc<KnownHosts>,
    accept_new: bool,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

impl client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let mut verdict = self.known.check(&names, self.port, key);
        if let Verdict::Unknown { .. } = verdict
            && (self.accept_new || self.known.is_approved(&names, key.public_key().key_data()))
            && key.certificate().is_none()
            && self
                .known
                .append(&names, self.port, &key.public_key())
                .is_ok()
        {
            verdict = Verdict::Trusted;
        }
        let ok = verdict == Verdict::Trusted;
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(verdict);
        }
        Ok(ok)
    }
}

pub type Conn = Handle<Handler>;

fn config(opts: &SshOptions, known: &KnownHosts, target: &Target) -> Arc<client::Config> {
    let preferred = russh::Preferred {
        key: Cow::Owned(known.preferred_algorithms(&target.key_names(), target.port)),
        ..Default::default()
    };
    Arc::new(client::Config {
        keepalive_interval: Some(opts.keepalive),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        preferred,
        ..Default::default()
    })
}

/// Connects and authenticates, through `via` when the target has a jump host. Returns the
/// handle and the round-trip time of the transport's connect.
pub async fn connect(
    target: &Target,
    opts: &SshOptions,
    known: Arc<KnownHosts>,
    via: Option<Arc<Conn>>,
) -> Result<(Conn, Duration), ConnState> {
    match tokio::time::timeout(
        opts.connect_timeout,
        connect_inner(target, opts, known, via),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(ConnState::Down {
            reason: format!("timeout after {} s", opts.connect_timeout.as_secs()),
        }),
    }
}

async fn connect_inner(
    target: &Target,
    opts: &SshOptions,
    known: Arc<KnownHosts>,
    via: Option<Arc<Conn>>,
) -> Result<(Conn, Duration), ConnState> {
    let verdict = Arc::new(Mutex::new(None));
    let handler = Handler {
        names: target.key_names().into_iter().map(String::from).collect(),
        port: target.port,
        known: known.clone(),
        accept_new: opts.accept_new,
        verdict: verdict.clone(),
    };
    let cfg = config(opts, &known, target);
    let start = Instant::now();
    let result = match via {
        Some(jump) => {
            let ch = jump
                .channel_open_direct_tcpip(
                    target.address.clone(),
                    u32::from(target.port),
                    "127.0.0.1",
                    0,
                )
                .await
                .map_err(|e| ConnState::Down {
                    reason: format!(
                        "jump host could not reach {}:{}: {e}",
                        target.address, target.port
                    ),
                })?;
            let rtt = start.elapsed();
            client::connect_stream(cfg, ch.into_stream(), handler)
                .await
                .map(|h| (h, rtt))
        }
        None => {
            let tcp = tokio::net::TcpStream::connect((target.address.as_str(), target.port))
                .await
                .map_err(|e| ConnState::Down {
                    reason: tcp_reason(&e),
                })?;
            let rtt = start.elapsed();
            let _ = tcp.set_nodelay(true);
            client::connect_stream(cfg, tcp, handler)
                .await
                .map(|h| (h, rtt))
        }
    };
    let (mut handle, rtt) = result.map_err(|e| {
        let v = verdict.lock().ok().and_then(|mut v| v.take());
        match v {
            Some(Verdict::Unknown { key }) => ConnState::HostKeyUnknown { key },
            Some(Verdict::Changed { expected, got }) => ConnState::HostKeyChanged { expected, got },
            Some(Verdict::Revoked { key, at }) => ConnState::HostKeyRevoked { key, at },
            Some(Verdict::BadCertificate { reason }) => ConnState::HostKeyBadCertificate { reason },
            _ => ConnState::Down {
                reason: format!("SSH handshake failed: {e}"),
            },
        }
    })?;
    authenticate(&mut handle, target, opts).await?;
    Ok((handle, rtt))
}

fn tcp_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused (no sshd listening?)".into(),
        TimedOut => "TCP connect timed out".into(),
        HostUnreachable | NetworkUnreachable => format!("unreachable: {e}"),
        _ => e.to_string(),
    }
}

/// Agent keys first, then key files, as OpenSSH does. The error lists what was tried.
async fn authenticate(
    handle: &mut Conn,
    target: &Target,
    opts: &SshOptions,
) -> Result<(), ConnState> {
    let failed = |detail: String| ConnState::AuthFailed { detail };
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|e| failed(e.to_string()))?
        .flatten();
    let mut tried: Vec<String> = Vec::new();
    if opts.use_agent
        && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
    {
        let ids = agent.request_identities().await.unwrap_or_default();
        for id in ids {
            let key = id.public_key().into_owned();
            let hash = if key.algorithm().is_rsa() {
                rsa_hash
            } else {
                None
            };
            tried.push(format!(
                "agent key {}",
                super::known_hosts::describe(key.key_data())
            ));
            if let Ok(r) = handle
                .authenticate_publickey_with(&target.user, key, hash, &mut agent)
                .await
                && r.success()
            {
                return Ok(());
            }
        }
    }
    for path in &target.identities {
        let key = match russh::keys::load_secret_key(path, None) {
            Ok(k) => k,
            Err(e) => {
                tried.push(format!("{} (unusable: {e})", path.display()));
                continue;
            }
        };
        tried.push(path.display().to_string());
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
        match handle.authenticate_publickey(&target.user, key).await {
            Ok(r) if r.success() => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(failed(format!("{e} (while trying {})", path.display()))),
        }
    }
    Err(failed(if tried.is_empty() {
        format!("no key to offer as {} (no agent, no key file)", target.user)
    } else {
        format!("{} refused {}", target.user, tried.join(", "))
    }))
}
