//! Running the probes of one cluster, whatever its technology: every member read at once (see
//! `watch::gather`), natively on connections kept between probes, or by the CLI path when
//! kbz.toml wraps the cluster's probes; the readings made one status by the technology's own
//! `status` (its `Watching` in the registry).

use crate::inventory::{Cluster, Fleet, FleetConfig, Host};
use crate::probe::ClusterStatus;
use crate::ssh::quote::quote;
use crate::ssh::{Pool, Target};
use crate::tech::Watching;
use crate::watch::{Ask, Reader, Reading, Readings, Section, gather};
use std::time::{Duration, Instant};

const SECTION: &str = "::kbz-section";

/// `command` as it must run on `host` for `cluster`: inside the cluster's container when
/// kbz.toml wraps its probes (`probe_wrap`, by cluster name, else by technology). `{}` takes
/// the command and `{stack}` the host's DOCKER_STACK, both quoted for the shell.
pub fn wrapped(config: &FleetConfig, cluster: &Cluster, host: &Host, command: &str) -> String {
    match wrap_of(config, cluster) {
        Some(w) => w
            .replace("{stack}", &quote(&host.docker_stack))
            .replace("{}", &quote(command)),
        None => command.to_string(),
    }
}

/// The cluster's `probe_wrap` (by cluster name, else by technology): set, the cluster is read
/// by the CLI path.
pub fn wrap_of<'a>(config: &'a FleetConfig, cluster: &Cluster) -> Option<&'a String> {
    config
        .probe_wrap
        .get(&cluster.name)
        .or_else(|| config.probe_wrap.get(cluster.technology.id()))
}

fn sections(text: &str) -> Vec<Section> {
    text.split(&format!("\n{SECTION}\n"))
        .map(|s| Ok(s.trim().to_string()))
        .collect()
}

/// The status of one cluster, asked once (doctor, the preflight, `status`).
pub async fn probe(
    pool: &Pool,
    fleet: &Fleet,
    cluster: &Cluster,
    config: &FleetConfig,
    quick: bool,
) -> Result<ClusterStatus, String> {
    Watch::new(pool, fleet, cluster, config, Duration::ZERO)?
        .probe(quick)
        .await
}

/// Every member of one cluster, with its kept-alive connections.
struct Members {
    members: Vec<(String, Target, Box<dyn Reader>)>,
    /// How often the readings that cost the host something are taken (see `Ask::own`).
    own_every: Duration,
    own_at: Option<Instant>,
}

/// One cluster watched: the same probe again and again, on connections kept between probes.
pub struct Watch<'a> {
    pool: &'a Pool,
    fleet: &'a Fleet,
    cluster: &'a Cluster,
    config: &'a FleetConfig,
    watching: Watching,
    /// Every host of the fleet by name and private address (see `Readings::hosts`).
    hosts: Vec<(String, String)>,
    /// The native readers, or None for the CLI path (below).
    native: Option<Members>,
}

impl<'a> Watch<'a> {
    /// Natively, unless kbz.toml wraps the cluster's probes (`probe_wrap`: its services in
    /// containers, their ports not reachable from the host): then the CLI path, which starts a
    /// shell and the services' CLIs on every member for every probe. It is the costly path,
    /// kept for that case only. `own_every`: see `Ask::own` (zero for a one-shot probe).
    /// An error for a technology kbz does not watch.
    pub fn new(
        pool: &'a Pool,
        fleet: &'a Fleet,
        cluster: &'a Cluster,
        config: &'a FleetConfig,
        own_every: Duration,
    ) -> Result<Watch<'a>, String> {
        let watching = crate::tech::of(cluster.technology).watch.ok_or_else(|| {
            format!(
                "kbz does not watch {} yet (watched: {})",
                cluster.technology.label(),
                crate::tech::labels(|t| t.watched())
            )
        })?;
        let native = wrap_of(config, cluster).is_none().then(|| Members {
            members: cluster
                .hosts
                .iter()
                .filter_map(|h| fleet.host(h))
                .map(|h| {
                    let reader = (watching.reader)(pool, cluster, h);
                    (h.hostname.clone(), pool.target(h), reader)
                })
                .collect(),
            own_every,
            own_at: None,
        });
        let hosts = fleet
            .hosts
            .iter()
            .map(|h| (h.hostname.clone(), h.ip_private.to_string()))
            .collect();
        Ok(Watch {
            pool,
            fleet,
            cluster,
            config,
            watching,
            hosts,
            native,
        })
    }

    pub async fn probe(&mut self, quick: bool) -> Result<ClusterStatus, String> {
        let readings = match self.native.as_mut() {
            Some(members) => read_native(self.pool, members, quick).await,
            None => {
                let (pool, fleet, config) = (self.pool, self.fleet, self.config);
                read_cli(
                    pool,
                    fleet,
                    config,
                    self.cluster,
                    self.watching.script,
                    quick,
                )
                .await
            }
        };
        (self.watching.status)(Readings {
            cluster: self.cluster,
            config: self.config,
            hosts: &self.hosts,
            readings,
        })
    }
}

/// The CLI path: every member's script, as `gather` runs them.
async fn read_cli(
    pool: &Pool,
    fleet: &Fleet,
    config: &FleetConfig,
    cluster: &Cluster,
    script: fn(&Fleet, &Cluster, &str, bool) -> String,
    quick: bool,
) -> Vec<Reading> {
    {
        let reads = cluster.hosts.iter().map(|on| async move {
            let text = match fleet.host(on) {
                None => Err(format!("no host {on}")),
                Some(h) => {
                    let command = script(fleet, cluster, &h.ip_private.to_string(), quick);
                    let command = wrapped(config, cluster, h, &command);
                    pool.probe_stdout(
                        &pool.target(h),
                        command,
                        Duration::from_secs(8),
                        "the probe",
                    )
                    .await
                }
            };
            (on.clone(), text.map(|t| sections(&t)))
        });
        gather(reads, quick).await
    }
}

/// Every member's native reading, gathered as `gather` does.
async fn read_native(pool: &Pool, members: &mut Members, quick: bool) -> Vec<Reading> {
    let own = members
        .own_at
        .is_none_or(|at| at.elapsed() >= members.own_every);
    if own {
        members.own_at = Some(Instant::now());
    }
    let ask = Ask { quick, own };
    let reads = members
        .members
        .iter_mut()
        .map(|(host, target, reader)| async move {
            // A host whose connection is down (or backed off) answers at once with why.
            let reading = match pool.connection(target).await {
                Ok(_) => Ok(reader.read(pool, target, ask).await),
                Err(state) => Err(state.explain(host)),
            };
            (host.clone(), reading)
        });
    gather(reads, quick).await
}
