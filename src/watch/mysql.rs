//! MySQL's client protocol as MariaDB speaks it, the part kbz needs: the handshake with
//! `mysql_native_password` (the plugin `IDENTIFIED BY` gives a MariaDB 10.11 user), text
//! queries and their result sets, on one kept-alive stream reopened after any failure.
//! Written here rather than taken from mysql_async, which opens its own TCP or Unix sockets
//! and cannot run over the host's SSH connection; the subset is small (no TLS, no prepared
//! statements, no compression).

use super::dial::{Dial, Io};
use crate::ssh::{Pool, Target};
use sha1::{Digest, Sha1};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG_PASSWORD: u32 = 1;
const PROTOCOL_41: u32 = 0x200;
const TRANSACTIONS: u32 = 0x2000;
const SECURE_CONNECTION: u32 = 0x8000;
const PLUGIN_AUTH: u32 = 0x80000;
const NATIVE: &str = "mysql_native_password";
/// utf8mb4_general_ci.
const CHARSET: u8 = 45;
/// Larger replies are garbage to us (`SHOW GLOBAL STATUS` is about 40 kB).
const MAX_REPLY: usize = 16 << 20;

/// Why a query has no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server's answer: `ERROR 1047 (08S01): WSREP has not yet prepared node...`.
    Server {
        code: u16,
        state: String,
        message: String,
    },
    /// No answer: the stream could not be opened, was cut, timed out, or said garbage.
    Io(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Server {
                code,
                state,
                message,
            } => write!(f, "ERROR {code} ({state}): {message}"),
            Failure::Io(e) => f.write_str(e),
        }
    }
}

/// A result set's rows (NULL is None); an OK reply has none.
pub type Rows = Vec<Vec<Option<String>>>;

/// A result set with its column names.
struct Table {
    columns: Vec<String>,
    rows: Rows,
}

pub struct Mysql {
    dial: Dial,
    user: String,
    password: String,
    stream: Option<Box<dyn Io>>,
}

impl Mysql {
    /// `address:port` as `target` reaches it.
    pub fn new(pool: &Pool, target: Target, address: &str, port: u16, user: &str) -> Mysql {
        Mysql::over(Dial::tcp(pool, target, address, port), user, String::new())
    }

    /// Over streams `dial` opens.
    pub fn over(dial: Dial, user: &str, password: String) -> Mysql {
        Mysql {
            dial,
            user: user.to_string(),
            password,
            stream: None,
        }
    }

    /// The password for the next connection (the current one is dropped).
    pub fn set_password(&mut self, password: String) {
        if password != self.password {
            self.password = password;
            self.stream = None;
        }
    }

    /// Whether a connection is open (a query on it needs no new handshake).
    pub fn connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Runs one statement. A server error keeps the connection; anything else drops it, so
    /// the next query starts on a new one.
    pub async fn query(&mut self, sql: &str, timeout: Duration) -> Result<Rows, Failure> {
        Ok(self.table(sql, timeout).await?.rows)
    }

    async fn table(&mut self, sql: &str, timeout: Duration) -> Result<Table, Failure> {
        let what = self.dial.what.clone();
        match tokio::time::timeout(timeout, self.ask(sql)).await {
            Ok(Ok(table)) => Ok(table),
            Ok(Err(Failure::Server {
                code,
                state,
                message,
            })) => Err(Failure::Server {
                code,
                state,
                message,
            }),
            Ok(Err(Failure::Io(e))) => {
                self.stream = None;
                Err(Failure::Io(format!("{what}: {e}")))
            }
            Err(_) => {
                self.stream = None;
                Err(Failure::Io(format!(
                    "{what}: no answer within {:.1} s",
                    timeout.as_secs_f64()
                )))
            }
        }
    }

    /// The statement's rows as `mariadb --batch --skip-column-names` prints them (a tab
    /// between columns, NULL as `NULL`), a server error as its text; Err only when the
    /// server could not be asked.
    pub async fn text(&mut self, sql: &str, timeout: Duration) -> Result<String, String> {
        said(self.table(sql, timeout).await, |t| render(&t.rows))
    }

    /// As `text`, with a first line of column names, as `mariadb --batch` prints it.
    pub async fn batch(&mut self, sql: &str, timeout: Duration) -> Result<String, String> {
        said(self.table(sql, timeout).await, |t| {
            if t.columns.is_empty() || t.rows.is_empty() {
                t.columns.join("\t")
            } else {
                format!("{}\n{}", t.columns.join("\t"), render(&t.rows))
            }
        })
    }

    async fn ask(&mut self, sql: &str) -> Result<Table, Failure> {
        if self.stream.is_none() {
            let mut s = self.dial.open().await.map_err(Failure::Io)?;
            handshake(&mut s, &self.user, &self.password).await?;
            self.stream = Some(s);
        }
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| Failure::Io("not connected".into()))?;
        let mut payload = vec![3u8];
        payload.extend_from_slice(sql.as_bytes());
        write_packet(s, 0, &payload).await?;
        read_result(s).await
    }
}

/// What the server said, a server error as its text; Err only when it could not be asked.
fn said(r: Result<Table, Failure>, shown: impl FnOnce(Table) -> String) -> Result<String, String> {
    match r {
        Ok(t) => Ok(shown(t)),
        Err(e @ Failure::Server { .. }) => Ok(e.to_string()),
        Err(Failure::Io(e)) => Err(e),
    }
}

pub fn render(rows: &Rows) -> String {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|c| c.as_deref().unwrap_or("NULL"))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn io(e: std::io::Error) -> Failure {
    Failure::Io(e.to_string())
}

async fn read_packet(s: &mut Box<dyn Io>) -> Result<(u8, Vec<u8>), Failure> {
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; 4];
        s.read_exact(&mut head).await.map_err(io)?;
        let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
        if payload.len() + len > MAX_REPLY {
            return Err(Failure::Io(format!("a reply over {MAX_REPLY} bytes")));
        }
        let start = payload.len();
        payload.resize(start + len, 0);
        s.read_exact(&mut payload[start..]).await.map_err(io)?;
        // A payload of 2^24-1 bytes continues in the next packet.
        if len < 0xFF_FFFF {
            return Ok((head[3], payload));
        }
    }
}

async fn write_packet(s: &mut Box<dyn Io>, seq: u8, payload: &[u8]) -> Result<(), Failure> {
    let len = payload.len();
    if len >= 0xFF_FFFF {
        return Err(Failure::Io("a request too long".into()));
    }
    let mut out = Vec::with_capacity(len + 4);
    out.extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8, seq]);
    out.extend_from_slice(payload);
    s.write_all(&out).await.map_err(io)?;
    s.flush().await.map_err(io)
}

/// Reads a packet's fields in order; running past its end is garbage from the server.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Failure> {
        if self.0.len() < n {
            return Err(Failure::Io("a reply cut short".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, Failure> {
        Ok(self.take(1)?[0])
    }

    fn until_nul(&mut self) -> Result<&'a [u8], Failure> {
        let end = self
            .0
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| Failure::Io("a string without its end".into()))?;
        let s = self.take(end)?;
        self.take(1)?;
        Ok(s)
    }

    /// A length-encoded integer; None for 0xFB (NULL in a row).
    fn lenenc(&mut self) -> Result<Option<u64>, Failure> {
        let n = |b: &[u8]| b.iter().rev().fold(0u64, |a, x| a << 8 | u64::from(*x));
        Ok(Some(match self.byte()? {
            0xFB => return Ok(None),
            0xFC => n(self.take(2)?),
            0xFD => n(self.take(3)?),
            0xFE => n(self.take(8)?),
            b => u64::from(b),
        }))
    }

    fn lenenc_str(&mut self) -> Result<Option<String>, Failure> {
        match self.lenenc()? {
            None => Ok(None),
            Some(len) => {
                let len = usize::try_from(len).map_err(|_| Failure::Io("a huge field".into()))?;
                Ok(Some(String::from_utf8_lossy(self.take(len)?).into_owned()))
            }
        }
    }
}

fn server_error(p: &[u8]) -> Failure {
    let mut c = Cursor(&p[1..]);
    let code = c
        .take(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0);
    let rest = c.0;
    let (state, message) = match rest.strip_prefix(b"#") {
        Some(r) if r.len() >= 5 => (
            String::from_utf8_lossy(&r[..5]).into_owned(),
            String::from_utf8_lossy(&r[5..]).into_owned(),
        ),
        _ => (String::new(), String::from_utf8_lossy(rest).into_owned()),
    };
    Failure::Server {
        code,
        state,
        message,
    }
}

/// mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
pub fn native_password(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let once = Sha1::digest(password.as_bytes());
    let twice = Sha1::digest(once);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(twice);
    let mix = h.finalize();
    once.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

async fn handshake(s: &mut Box<dyn Io>, user: &str, password: &str) -> Result<(), Failure> {
    let (seq, p) = read_packet(s).await?;
    if p.first() == Some(&0xFF) {
        return Err(server_error(&p));
    }
    let mut c = Cursor(&p);
    if c.byte()? != 10 {
        return Err(Failure::Io("not a MySQL server (protocol 10)".into()));
    }
    c.until_nul()?; // server version
    c.take(4)?; // connection id
    let mut scramble = c.take(8)?.to_vec();
    c.take(1)?;
    let low = c.take(2)?;
    c.take(3)?; // charset, status
    let high = c.take(2)?;
    let caps = u32::from(u16::from_le_bytes([low[0], low[1]]))
        | u32::from(u16::from_le_bytes([high[0], high[1]])) << 16;
    let data_len = usize::from(c.byte()?);
    c.take(10)?;
    if caps & SECURE_CONNECTION != 0 {
        let n = data_len.saturating_sub(8).max(13);
        let part = c.take(n)?;
        // Its last byte is a terminating NUL.
        scramble.extend_from_slice(&part[..n - 1]);
    }
    let plugin = if caps & PLUGIN_AUTH != 0 {
        String::from_utf8_lossy(c.until_nul().unwrap_or_default()).into_owned()
    } else {
        NATIVE.to_string()
    };
    let ours = LONG_PASSWORD | PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION | PLUGIN_AUTH;
    let auth = if plugin == NATIVE {
        native_password(password, &scramble)
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    out.extend_from_slice(&(ours & caps).to_le_bytes());
    out.extend_from_slice(&(16u32 << 20).to_le_bytes());
    out.push(CHARSET);
    out.extend_from_slice(&[0u8; 23]);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.push(auth.len() as u8);
    out.extend_from_slice(&auth);
    out.extend_from_slice(NATIVE.as_bytes());
    out.push(0);
    write_packet(s, seq.wrapping_add(1), &out).await?;
    loop {
        let (seq, p) = read_packet(s).await?;
        match p.first() {
            Some(0x00) => return Ok(()),
            Some(0xFF) => return Err(server_error(&p)),
            // The server asks for another plugin, with a new scramble.
            Some(0xFE) => {
                let mut c = Cursor(&p[1..]);
                let name = String::from_utf8_lossy(c.until_nul()?).into_owned();
                if name != NATIVE {
                    return Err(Failure::Io(format!(
                        "the server wants authentication plugin {name}; kbz speaks {NATIVE}"
                    )));
                }
                let data = c.0.strip_suffix(&[0]).unwrap_or(c.0);
                write_packet(s, seq.wrapping_add(1), &native_password(password, data)).await?;
            }
            _ => return Err(Failure::Io("an unexpected reply to the handshake".into())),
        }
    }
}

fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xFE) && p.len() < 9
}

async fn read_result(s: &mut Box<dyn Io>) -> Result<Table, Failure> {
    let (_, p) = read_packet(s).await?;
    match p.first() {
        Some(0x00) => {
            return Ok(Table {
                columns: Vec::new(),
                rows: Vec::new(),
            });
        }
        Some(0xFF) => return Err(server_error(&p)),
        None => return Err(Failure::Io("an empty reply".into())),
        _ => {}
    }
    let columns = Cursor(&p)
        .lenenc()?
        .ok_or_else(|| Failure::Io("a result without columns".into()))?;
    // Column definitions (catalog, schema, table, original table, then the name), then
    // an EOF.
    let mut names = Vec::new();
    loop {
        let (_, p) = read_packet(s).await?;
        if is_eof(&p) {
            break;
        }
        let mut c = Cursor(&p);
        for _ in 0..4 {
            c.lenenc_str()?;
        }
        names.push(c.lenenc_str()?.unwrap_or_default());
    }
    let mut rows = Vec::new();
    loop {
        let (_, p) = read_packet(s).await?;
        if is_eof(&p) {
            return Ok(Table {
                columns: names,
                rows,
            });
        }
        if p.first() == Some(&0xFF) {
            return Err(server_error(&p));
        }
        let mut c = Cursor(&p);
        let mut row = Vec::with_capacity(columns as usize);
        for _ in 0..columns {
            row.push(c.lenenc_str()?);
        }
        rows.push(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_reads_every_width_and_null() {
        let bytes = [0x05, 0xFC, 0x10, 0x27, 0xFB, 0xFD, 1, 0, 1];
        let mut c = Cursor(&bytes);
        assert_eq!(c.lenenc().unwrap(), Some(5));
        assert_eq!(c.lenenc().unwrap(), Some(10000));
        assert_eq!(c.lenenc().unwrap(), None);
        assert_eq!(c.lenenc().unwrap(), Some(65537));
        assert!(c.lenenc().is_err(), "past the end is an error, not a panic");
    }

    #[test]
    fn server_errors_keep_their_code_state_and_message() {
        let mut p = vec![0xFF, 0x17, 0x04];
        p.extend_from_slice(b"#08S01WSREP has not yet prepared node for application use");
        assert_eq!(
            server_error(&p).to_string(),
            "ERROR 1047 (08S01): WSREP has not yet prepared node for application use"
        );
    }

    /// A result set as the protocol lays it out: the column count, each column's
    /// definition, an EOF, the rows (0xFB for NULL), an EOF.
    #[tokio::test]
    async fn result_sets_keep_their_column_names() {
        let packet = |seq: u8, body: &[u8]| {
            let mut p = vec![body.len() as u8, 0, 0, seq];
            p.extend_from_slice(body);
            p
        };
        let lenenc = |s: &str| {
            let mut b = vec![s.len() as u8];
            b.extend_from_slice(s.as_bytes());
            b
        };
        let column = |name: &str| {
            let mut b = Vec::new();
            for f in ["def", "", "", "", name, ""] {
                b.extend(lenenc(f));
            }
            b.extend_from_slice(&[0x0C, 0x21, 0, 0x0A, 0, 0, 0, 0xFD, 0, 0, 0, 0, 0]);
            b
        };
        let eof = [0xFE, 0, 0, 2, 0];
        let mut bytes = packet(1, &[2]);
        bytes.extend(packet(2, &column("hostgroup_id")));
        bytes.extend(packet(3, &column("comment")));
        bytes.extend(packet(4, &eof));
        let mut row = lenenc("10");
        row.push(0xFB);
        bytes.extend(packet(5, &row));
        bytes.extend(packet(6, &eof));
        let (ours, mut theirs) = tokio::io::duplex(1024);
        tokio::io::AsyncWriteExt::write_all(&mut theirs, &bytes)
            .await
            .unwrap();
        let mut s: Box<dyn Io> = Box::new(ours);
        let t = read_result(&mut s).await.unwrap();
        assert_eq!(t.columns, ["hostgroup_id", "comment"]);
        assert_eq!(t.rows, vec![vec![Some("10".to_string()), None]]);
    }
}
