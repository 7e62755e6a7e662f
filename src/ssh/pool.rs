//! The connection pool: one connection per host, reused by every channel (probes, logs,
//! module steps); handshakes capped overall, channels capped per host; every host's
//! connection state published for the front ends.

use super::client::{self, Conn, ConnState};
use super::known_hosts::KnownHosts;
use super::target::{ConfigFile, SshOptions, Target};
use crate::inventory::Host;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

/// A host's connection state changed.
#[derive(Debug, Clone)]
pub struct ConnEvent {
    /// The inventory host name (or the jump host's alias).
    pub host: String,
    pub state: ConnState,
}

/// A remote command's start or end, for the command log.
#[derive(Debug, Clone)]
pub enum CommandEvent {
    Started {
        id: u64,
        host: String,
        /// What was asked (not the wrapper around it).
        command: String,
        at: std::time::SystemTime,
    },
    Ended {
        id: u64,
        exit: super::Exit,
        duration: Duration,
    },
}

struct Slot {
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    channels: Arc<Semaphore>,
    /// After a failed connect: no new attempt before this instant (the failure is returned
    /// at once), and the next wait if the attempt after it fails too.
    backoff: Mutex<Option<Backoff>>,
}

#[derive(Clone)]
struct Backoff {
    until: Instant,
    next: Duration,
    state: ConnState,
}

/// A dead host is retried after 0.5 s, then 1, 2, 4, 8, 10 s...: backed off, not hammered.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

struct Inner {
    opts: SshOptions,
    known: Arc<KnownHosts>,
    config: ConfigFile,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    states: Mutex<HashMap<String, ConnState>>,
    handshakes: Arc<Semaphore>,
    events: broadcast::Sender<ConnEvent>,
    commands: broadcast::Sender<CommandEvent>,
    next_command: AtomicU64,
}

#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// A connection lent for one channel; the permit keeps the host under its channel cap.
pub struct Lease {
    pub conn: Arc<Conn>,
    pub permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(opts: SshOptions) -> Result<Pool, String> {
        let known = Arc::new(KnownHosts::load(
            &opts.known_hosts,
            opts.known_hosts_write.clone(),
        ));
        let config = ConfigFile::load(opts.ssh_config.as_deref())?;
        let (events, _) = broadcast::channel(1024);
        let (commands, _) = broadcast::channel(1024);
        Ok(Pool {
            inner: Arc::new(Inner {
                handshakes: Arc::new(Semaphore::new(opts.max_handshakes.max(1))),
                opts,
                known,
                config,
                slots: Mutex::new(HashMap::new()),
                states: Mutex::new(HashMap::new()),
                events,
                commands,
                next_command: AtomicU64::new(1),
            }),
        })
    }

    pub fn options(&self) -> &SshOptions {
        &self.inner.opts
    }

    pub fn target(&self, host: &Host) -> Target {
        self.inner.config.target(host, &self.inner.opts)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ConnEvent> {
        self.inner.events.subscribe()
    }

    /// Every remote command this pool runs, when it starts and when it ends (the console's
    /// command log).
    pub fn subscribe_commands(&self) -> broadcast::Receiver<CommandEvent> {
        self.inner.commands.subscribe()
    }

    pub(super) fn command_started(&self, host: &str, command: String) -> u64 {
        let id = self.inner.next_command.fetch_add(1, Ordering::Relaxed);
        let _ = self.inner.commands.send(CommandEvent::Started {
            id,
            host: host.to_string(),
            command,
            at: std::time::SystemTime::now(),
        });
        id
    }

    pub(super) fn command_ended(&self, id: u64, exit: &super::Exit, duration: Duration) {
        let _ = self.inner.commands.send(CommandEvent::Ended {
            id,
            exit: exit.clone(),
            duration,
        });
    }

    pub fn state(&self, host: &str) -> ConnState {
        self.inner
            .states
            .lock()
            .ok()
            .and_then(|s| s.get(host).cloned())
            .unwrap_or(ConnState::Idle)
    }

    fn set_state(&self, host: &str, state: ConnState) {
        if let Ok(mut s) = self.inner.states.lock() {
            let previous = s.insert(host.to_string(), state.clone());
            // Round-trip times change every ping; only a change of kind is news.
            let kind = std::mem::discriminant(&state);
            if previous.is_none_or(|p| std::mem::discriminant(&p) != kind) {
                match &state {
                    ConnState::Up { .. } | ConnState::Connecting | ConnState::Idle => {
                        log::info!(target: "ssh", "{host}: {}", state.explain(host))
                    }
                    _ => log::warn!(target: "ssh", "{host}: {}", state.explain(host)),
                }
            }
        }
        let _ = self.inner.events.send(ConnEvent {
            host: host.to_string(),
            state,
        });
    }

    /// A person checked this host's unknown key (as the state showed it) and accepts it: the
    /// next connection that presents exactly that key records it in known_hosts. The host is
    /// retried at once.
    pub fn trust_key(&self, target: &Target, key: &str) {
        self.inner.known.approve(&target.key_names(), key);
        if let Ok(mut b) = self.slot(target).backoff.lock() {
            *b = None;
        }
        log::info!(target: "ssh", "{}: host key {key} accepted by the operator", target.alias);
    }

    fn slot(&self, target: &Target) -> Arc<Slot> {
        let cap = self.inner.opts.channels_per_host.max(1);
        let mut slots = match self.inner.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots
            .entry(target.id())
            .or_insert_with(|| {
                Arc::new(Slot {
                    conn: tokio::sync::Mutex::new(None),
                    channels: Arc::new(Semaphore::new(cap)),
                    backoff: Mutex::new(None),
                })
            })
            .clone()
    }

    /// A live connection to the target (made, or remade after a loss, on demand) and a
    /// channel permit. A failure says why, in the host's state too.
    pub async fn lease(&self, target: &Target) -> Result<Lease, ConnState> {
        let slot = self.slot(target);
        let permit = slot
            .channels
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ConnState::Down {
                reason: "pool closed".into(),
            })?;
        let conn = self.connection(target).await?;
        Ok(Lease { conn, permit })
    }

    /// The target's connection, connecting (through its jump host first) if needed. Callers
    /// for one host wait for a single connect rather than each opening their own.
    pub fn connection<'a>(
        &'a self,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Conn>, ConnState>> + Send + 'a>> {
        Box::pin(async move {
            let slot = self.slot(target);
            let mut guard = slot.conn.lock().await;
            if let Some(c) = guard.as_ref()
                && !c.is_closed()
            {
                return Ok(c.clone());
            }
            let backoff = slot.backoff.lock().ok().and_then(|b| b.clone());
            if let Some(b) = &backoff
                && Instant::now() < b.until
            {
                return Err(b.state.clone());
            }
            let via = match &target.jump {
                Some(j) => Some(self.connection(j).await.map_err(|s| ConnState::Down {
                    reason: format!("jump host {}: {}", j.alias, s.explain(&j.alias)),
                })?),
                None => None,
            };
            self.set_state(&target.alias, ConnState::Connecting);
            let result = {
                let _handshake =
                    self.inner
                        .handshakes
                        .acquire()
                        .await
                        .map_err(|_| ConnState::Down {
                            reason: "pool closed".into(),
                        })?;
                client::connect(target, &self.inner.opts, self.inner.known.clone(), via).await
            };
            match result {
                Ok((conn, rtt)) => {
                    let conn = Arc::new(conn);
                    *guard = Some(conn.clone());
                    if let Ok(mut b) = slot.backoff.lock() {
                        *b = None;
                    }
                    self.set_state(
                        &target.alias,
                        ConnState::Up {
                            rtt_ms: rtt.as_secs_f64() * 1000.0,
                        },
                    );
                    Ok(conn)
                }
                Err(state) => {
                    *guard = None;
                    let wait = backoff.map_or(FIRST_BACKOFF, |b| b.next);
                    if let Ok(mut b) = slot.backoff.lock() {
                        *b = Some(Backoff {
                            until: Instant::now() + wait,
                            next: (wait * 2).min(MAX_BACKOFF),
                            state: state.clone(),
                        });
                    }
                    self.set_state(&target.alias, state.clone());
                    Err(state)
                }
            }
        })
    }

    /// An SSH-level round trip on the host's connection (no remote process), connecting first
    /// if needed. No answer within `timeout` marks the host down and drops the connection, so
    /// the next use reconnects.
    pub async fn ping(&self, target: &Target, timeout: Duration) -> Result<Duration, ConnState> {
        let conn = self.connection(target).await?;
        let start = Instant::now();
        match tokio::time::timeout(timeout, conn.send_ping()).await {
            Ok(Ok(())) if !conn.is_closed() => {
                let rtt = start.elapsed();
                self.set_state(
                    &target.alias,
                    ConnState::Up {
                        rtt_ms: rtt.as_secs_f64() * 1000.0,
                    },
                );
                Ok(rtt)
            }
            outcome => {
                let state = ConnState::Down {
                    reason: match outcome {
                        Err(_) => format!("no answer for {:.0} s", timeout.as_secs_f64()),
                        _ => "connection closed".into(),
                    },
                };
                let slot = self.slot(target);
                *slot.conn.lock().await = None;
                self.set_state(&target.alias, state.clone());
                Err(state)
            }
        }
    }

    /// Marks a host down after its connection was lost mid-use.
    pub fn lost(&self, target: &Target, reason: &str) {
        self.set_state(
            &target.alias,
            ConnState::Down {
                reason: reason.to_string(),
            },
        );
    }
}
