//! Keeps the endpoint checks fresh for the console: every endpoint checked in its protocol
//! every `interval`, through one tunnel host. The endpoints and credentials are read again each
//! round, so an install that records new ones shows without a restart.

use crate::inventory::Fleet;
use crate::modules::secrets::Secrets;
use crate::probe::endpoints::{Credentials, EndpointCheck, check_all, endpoints_of, via_host};
use crate::ssh::Pool;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub fn spawn(
    pool: &Pool,
    fleet: Arc<Fleet>,
    state: PathBuf,
    interval: Duration,
    tx: mpsc::UnboundedSender<Vec<EndpointCheck>>,
) -> JoinHandle<()> {
    let pool = pool.clone();
    tokio::spawn(async move {
        loop {
            let endpoints = endpoints_of(&fleet, &state).unwrap_or_default();
            if !endpoints.is_empty()
                && let Ok(via) = via_host(&fleet, None)
            {
                let creds = Secrets::load(&state, &fleet.env)
                    .map(|s| Credentials::from_secrets(&s.values))
                    .unwrap_or(Credentials {
                        values: Default::default(),
                    });
                let checks = check_all(&pool, &fleet, via, &endpoints, &creds).await;
                if tx.send(checks).is_err() {
                    return;
                }
            }
            tokio::time::sleep(interval).await;
        }
    })
}
