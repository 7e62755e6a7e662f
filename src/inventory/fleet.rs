//! The fleet of one ENV: its hosts and the service clusters they form.

use super::rules::{RuleSet, Technology};
use super::{Host, Inventory};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// A service cluster: the hosts sharing a pool and a technology (K3s: across pools).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// Short, unique, typeable (`postgres`, `redis`, `redis-cache-pool`).
    pub name: String,
    pub technology: Technology,
    pub pools: Vec<String>,
    /// Host names, in file order.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Fleet {
    pub source: PathBuf,
    pub env: String,
    /// Every ENV present in the file, so a front end can say what else is there.
    pub envs: Vec<String>,
    pub hosts: Vec<Host>,
    pub clusters: Vec<Cluster>,
}

impl Fleet {
    /// The fleet of `env` (default: [`Inventory::default_env`]). An ENV absent from the file is
    /// an error listing those that are present.
    pub fn new(inventory: &Inventory, env: Option<&str>, rules: &RuleSet) -> Result<Fleet, String> {
        let envs = inventory.envs();
        let env = match env {
            Some(e) if envs.iter().any(|x| x == e) => e.to_string(),
            Some(e) => {
                return Err(format!(
                    "no host of {} has ENV {e:?}; ENVs in the file: {}",
                    inventory.file.display(),
                    envs.join(", ")
                ));
            }
            None => inventory.default_env(),
        };
        let hosts: Vec<Host> = inventory
            .hosts
            .iter()
            .filter(|h| h.env == env)
            .cloned()
            .collect();
        let clusters = group(&hosts, rules);
        Ok(Fleet {
            source: inventory.file.clone(),
            env,
            envs,
            hosts,
            clusters,
        })
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.hostname == name)
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The cluster a host belongs to, if any.
    pub fn cluster_of(&self, host: &str) -> Option<&Cluster> {
        self.clusters
            .iter()
            .find(|c| c.hosts.iter().any(|h| h == host))
    }

    /// Hosts that belong to no cluster, in file order.
    pub fn plain_hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts
            .iter()
            .filter(|h| self.cluster_of(&h.hostname).is_none())
    }
}

/// Groups hosts by (technology, pool) in order of first appearance, then names the clusters.
fn group(hosts: &[Host], rules: &RuleSet) -> Vec<Cluster> {
    // Key: rule name template + technology + pool ("" when the rule spans pools).
    let mut index: HashMap<(String, Technology, String), usize> = HashMap::new();
    let mut clusters: Vec<(String, Cluster)> = Vec::new();
    for host in hosts {
        let Some(rule) = rules.detect(host) else {
            continue;
        };
        let pool_key = if rule.across_pools {
            String::new()
        } else {
            host.pool.clone()
        };
        let key = (rule.name.clone(), rule.technology, pool_key);
        let i = *index.entry(key).or_insert_with(|| {
            let name = rule.name.replace("{pool}", &slug(&host.pool));
            clusters.push((
                name.clone(),
                Cluster {
                    name,
                    technology: rule.technology,
                    pools: Vec::new(),
                    hosts: Vec::new(),
                },
            ));
            clusters.len() - 1
        });
        let cluster = &mut clusters[i].1;
        if !cluster.pools.contains(&host.pool) {
            cluster.pools.push(host.pool.clone());
        }
        cluster.hosts.push(host.hostname.clone());
    }
    disambiguate(clusters.into_iter().map(|(_, c)| c).collect())
}

/// Two clusters with one name (one technology in two pools) both take their pool as suffix;
/// anything still colliding gets a number.
fn disambiguate(mut clusters: Vec<Cluster>) -> Vec<Cluster> {
    let count =
        |clusters: &[Cluster], name: &str| clusters.iter().filter(|c| c.name == name).count();
    let clashing: Vec<bool> = clusters
        .iter()
        .map(|c| count(&clusters, &c.name) > 1)
        .collect();
    for (c, clash) in clusters.iter_mut().zip(clashing) {
        if clash {
            let pool = c.pools.first().map(|p| slug(p)).unwrap_or_default();
            c.name = format!(
                "{}-{}",
                c.name,
                if pool.is_empty() {
                    "nopool".into()
                } else {
                    pool
                }
            );
        }
    }
    for i in 0..clusters.len() {
        let mut n = 2;
        let base = clusters[i].name.clone();
        while clusters[..i].iter().any(|c| c.name == clusters[i].name) {
            clusters[i].name = format!("{base}-{n}");
            n += 1;
        }
    }
    clusters
}

/// Lower-case letters, digits and single dashes: something a person can type after `:cluster`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}
