//! Redis and Sentinel over RESP (the `redis` crate), on a kept-alive SSH-forwarded stream to
//! the host's own port: reopened after any failure, with the commands' replies rendered the
//! way `redis-cli` prints them when piped (one line per element), so the parsers read the
//! same text whether it came from here or from the CLI path.

use super::dial::Dial;
use crate::ssh::{Pool, Target};
use redis::aio::MultiplexedConnection;
use redis::{Cmd, RedisConnectionInfo, Value};
use std::time::Duration;
use tokio::task::JoinHandle;

pub struct Resp {
    dial: Dial,
    password: Option<String>,
    conn: Option<MultiplexedConnection>,
    driver: Option<JoinHandle<()>>,
}

impl Drop for Resp {
    fn drop(&mut self) {
        self.reset();
    }
}

/// The connection settings for a server that may require a password.
pub fn settings(password: Option<&str>) -> RedisConnectionInfo {
    // No `CLIENT SETINFO` on connect: a round trip per connection that Sentinel has no use
    // for.
    let settings = RedisConnectionInfo::default().set_skip_set_lib_name();
    match password {
        Some(p) => settings.set_password(p),
        None => settings,
    }
}

impl Resp {
    pub fn new(
        pool: &Pool,
        target: Target,
        address: &str,
        port: u16,
        password: Option<String>,
    ) -> Resp {
        Resp::over(Dial::tcp(pool, target, address, port), password)
    }

    /// Over streams `dial` opens.
    pub fn over(dial: Dial, password: Option<String>) -> Resp {
        Resp {
            dial,
            password,
            conn: None,
            driver: None,
        }
    }

    /// The password for the next connection (the current one is dropped).
    pub fn set_password(&mut self, password: Option<String>) {
        self.password = password;
        self.reset();
    }

    fn reset(&mut self) {
        self.conn = None;
        if let Some(d) = self.driver.take() {
            d.abort();
        }
    }

    /// Runs `cmd`, its reply as redis-cli prints it: an error reply is its text
    /// (`NOQUORUM ...`), as redis-cli prints it too; only a failure to ask is an `Err`.
    pub async fn text(&mut self, cmd: &Cmd, timeout: Duration) -> Result<String, String> {
        let what = self.dial.what.clone();
        let outcome = tokio::time::timeout(timeout, async {
            let conn = self.ready().await?;
            match conn.send_packed_command(cmd).await {
                Ok(v) => Ok(Ok(v)),
                // The server's answer, not a failure to ask.
                Err(e) if e.code().is_some() => Ok(Err(match e.detail() {
                    Some(d) => format!("{} {d}", e.code().unwrap_or_default()),
                    None => e.code().unwrap_or_default().to_string(),
                })),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        match outcome {
            Ok(Ok(Ok(v))) => Ok(render(&v)),
            Ok(Ok(Err(server_error))) => Ok(server_error),
            Ok(Err(e)) => {
                self.reset();
                Err(format!("{what}: {e}"))
            }
            Err(_) => {
                self.reset();
                Err(format!(
                    "{what}: no answer within {:.1} s",
                    timeout.as_secs_f64()
                ))
            }
        }
    }

    async fn ready(&mut self) -> Result<&mut MultiplexedConnection, String> {
        if self.conn.is_none() {
            self.reset();
            let stream = self.dial.open().await?;
            let info = settings(self.password.as_deref());
            let (conn, driver) = MultiplexedConnection::new_with_config(
                &info,
                stream,
                redis::AsyncConnectionConfig::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
            self.driver = Some(tokio::spawn(driver));
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| "not connected".to_string())
    }
}

/// A reply as `redis-cli` prints it to a pipe: scalars on their own line, arrays and maps
/// flattened element by element, nil as an empty line, errors as their text.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    render_into(v, &mut out);
    out.trim_end_matches('\n').to_string()
}

fn render_into(v: &Value, out: &mut String) {
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    match v {
        Value::Nil => line(""),
        Value::Int(i) => line(&i.to_string()),
        Value::BulkString(b) => line(&String::from_utf8_lossy(b)),
        Value::SimpleString(s) => line(s),
        Value::Okay => line("OK"),
        Value::Double(d) => line(&d.to_string()),
        Value::Boolean(b) => line(if *b { "1" } else { "0" }),
        Value::VerbatimString { text, .. } => line(text),
        Value::ServerError(e) => {
            let text = match e.details() {
                Some(d) => format!("{} {d}", e.code()),
                None => e.code().to_string(),
            };
            line(&text)
        }
        Value::Array(items) | Value::Set(items) => {
            for i in items {
                render_into(i, out);
            }
        }
        Value::Map(pairs) => {
            for (k, v) in pairs {
                render_into(k, out);
                render_into(v, out);
            }
        }
        Value::Attribute { data, .. } => render_into(data, out),
        Value::Push { data, .. } => {
            for i in data {
                render_into(i, out);
            }
        }
        other => line(&format!("{other:?}")),
    }
}
