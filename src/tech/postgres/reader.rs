//! A standalone PostgreSQL server read natively: a kept-alive session (tokio-postgres over a
//! direct-tcpip channel to the server's loopback port), the same query the CLI path runs in
//! psql, its row rendered as psql prints it.

use super::QUERY;
use crate::ssh::{Pool, Target};
use crate::watch::{ASK, Ask, Reader, Section};
use futures_util::future::BoxFuture;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_postgres::SimpleQueryMessage;

/// Where kbz's modules keep the superuser's password (root-only); a server without it is
/// asked without a password, and says why when it refuses.
pub const PASSWORD_FILE: &str = "/etc/kbz/secrets/pg_superuser_password";

#[derive(Default)]
pub struct Member {
    client: Option<tokio_postgres::Client>,
    /// Drives the session; aborted with it.
    driver: Option<JoinHandle<()>>,
    password: Option<String>,
    /// When the password was last read from the host (at most once a minute).
    password_read: Option<Instant>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.reset();
    }
}

impl Reader for Member {
    fn read<'a>(
        &'a mut self,
        pool: &'a Pool,
        target: &'a Target,
        _: Ask,
    ) -> BoxFuture<'a, Vec<Section>> {
        Box::pin(async move {
            let row = self.row(pool, target).await;
            if row.is_err() {
                self.reset();
            }
            vec![row]
        })
    }
}

impl Member {
    fn reset(&mut self) {
        self.client = None;
        if let Some(d) = self.driver.take() {
            d.abort();
        }
    }

    /// The query's row, `|`-separated, NULL as empty (psql -XAt's output).
    async fn row(&mut self, pool: &Pool, target: &Target) -> Result<String, String> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.connect(pool, target).await?;
        }
        let client = self.client.as_ref().ok_or("not connected")?;
        let messages = tokio::time::timeout(ASK, client.simple_query(QUERY))
            .await
            .map_err(|_| "PostgreSQL: no answer within 1 s".to_string())?
            .map_err(|e| format!("PostgreSQL: {}", super::client::pg_error(&e)))?;
        let row = messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .ok_or("PostgreSQL: the query returned no row")?;
        Ok((0..row.len())
            .map(|i| row.get(i).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("|"))
    }

    async fn connect(&mut self, pool: &Pool, target: &Target) -> Result<(), String> {
        self.reset();
        if self
            .password_read
            .is_none_or(|at| at.elapsed() > Duration::from_secs(60))
        {
            self.password_read = Some(Instant::now());
            self.password = crate::watch::secret(pool, target, PASSWORD_FILE).await;
        }
        let stream = pool.open_tcp(target, "127.0.0.1", 5432).await?;
        let mut config = tokio_postgres::Config::new();
        config
            .user("postgres")
            .dbname("postgres")
            .application_name("kbz-watch");
        if let Some(p) = &self.password {
            config.password(p);
        }
        let (client, connection) =
            tokio::time::timeout(ASK * 2, config.connect_raw(stream, tokio_postgres::NoTls))
                .await
                .map_err(|_| "PostgreSQL: no answer within 2 s".to_string())?
                .map_err(|e| format!("PostgreSQL: {}", super::client::pg_error(&e)))?;
        self.driver = Some(tokio::spawn(async move {
            let _ = connection.await;
        }));
        self.client = Some(client);
        Ok(())
    }
}
