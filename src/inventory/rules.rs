//! Which technology a host runs, decided by one table of rules over its columns. The table is
//! data: a `kbz.toml` beside the inventory can put its own rules in front of it (or replace
//! it) without recompiling, because every team names its roles a little differently.

use super::error::{InventoryError, Problem};
use super::{Host, glob};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Technology {
    /// PostgreSQL managed by Patroni, etcd as its DCS.
    Patroni,
    /// A PostgreSQL server outside any Patroni cluster.
    Postgres,
    /// Redis data nodes with Sentinel.
    Redis,
    Rabbitmq,
    /// MariaDB Galera.
    Galera,
    Proxysql,
    Haproxy,
    Minio,
    K3s,
}

impl Technology {
    pub const ALL: [Technology; 9] = [
        Technology::Patroni,
        Technology::Postgres,
        Technology::Redis,
        Technology::Rabbitmq,
        Technology::Galera,
        Technology::Proxysql,
        Technology::Haproxy,
        Technology::Minio,
        Technology::K3s,
    ];

    /// The name used in `kbz.toml` and JSON.
    pub fn id(self) -> &'static str {
        match self {
            Technology::Patroni => "patroni",
            Technology::Postgres => "postgres",
            Technology::Redis => "redis",
            Technology::Rabbitmq => "rabbitmq",
            Technology::Galera => "galera",
            Technology::Proxysql => "proxysql",
            Technology::Haproxy => "haproxy",
            Technology::Minio => "minio",
            Technology::K3s => "k3s",
        }
    }

    /// What a person calls it.
    pub fn label(self) -> &'static str {
        match self {
            Technology::Patroni => "PostgreSQL + Patroni",
            Technology::Postgres => "PostgreSQL (standalone)",
            Technology::Redis => "Redis + Sentinel",
            Technology::Rabbitmq => "RabbitMQ",
            Technology::Galera => "MariaDB Galera",
            Technology::Proxysql => "ProxySQL",
            Technology::Haproxy => "HAProxy",
            Technology::Minio => "MinIO",
            Technology::K3s => "K3s",
        }
    }
}

impl fmt::Display for Technology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One detection rule: when every column matches its glob, the host runs `technology`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub technology: Technology,
    /// Cluster name; `{pool}` is replaced by the host's pool (made typeable).
    pub name: String,
    /// Column name -> glob (case-insensitive).
    pub when: BTreeMap<String, String>,
    /// One cluster across all pools (K3s masters and workers live in different pools).
    #[serde(default)]
    pub across_pools: bool,
}

impl Rule {
    pub fn matches(&self, host: &Host) -> bool {
        self.when.iter().all(|(column, pattern)| {
            host.column(column)
                .is_some_and(|value| glob::matches(pattern, &value))
        })
    }
}

/// The built-in table, first match wins. Order matters: a postgres host with a Patroni stack
/// must meet the Patroni rule before the standalone one.
/// (technology, cluster name, across pools, when: column -> glob)
type BuiltinRule = (
    Technology,
    &'static str,
    bool,
    &'static [(&'static str, &'static str)],
);

#[rustfmt::skip]
const BUILTIN: &[BuiltinRule] = &[
    // technology          cluster name       across pools  when
    (Technology::K3s,      "k3s",             true,  &[("ROLE", "k3s")]),
    (Technology::Patroni,  "postgres",        false, &[("SUBROLE", "postgres"), ("DOCKER_STACK", "*patroni*")]),
    (Technology::Postgres, "postgres-{pool}", false, &[("SUBROLE", "postgres")]),
    (Technology::Redis,    "redis",           false, &[("ROLE", "redis")]),
    (Technology::Redis,    "redis",           false, &[("SUBROLE", "redis*")]),
    (Technology::Rabbitmq, "rabbitmq",        false, &[("SUBROLE", "rabbitmq")]),
    (Technology::Rabbitmq, "rabbitmq",        false, &[("ROLE", "queue")]),
    (Technology::Galera,   "mariadb",         false, &[("SUBROLE", "mariadb")]),
    (Technology::Proxysql, "proxysql",        false, &[("SUBROLE", "proxysql")]),
    (Technology::Haproxy,  "haproxy",         false, &[("SUBROLE", "*haproxy")]),
    (Technology::Minio,    "minio",           false, &[("SUBROLE", "minio")]),
];

/// The rules in force for one inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KbzToml {
    /// Drop the built-in table instead of putting these rules in front of it.
    #[serde(default)]
    replace_builtin_rules: bool,
    #[serde(default)]
    cluster: Vec<Rule>,
    /// Facts of this fleet that the inventory has no column for (a floating address), given
    /// to module scripts as `KBZ_VAR_<NAME>`.
    #[serde(default)]
    vars: BTreeMap<String, String>,
    /// Service endpoints (name -> address:port) checked by `kbz endpoints`, in front of those
    /// the load-balancer module recorded.
    #[serde(default)]
    endpoints: BTreeMap<String, String>,
    /// Probe command wrappers per cluster, for fleets whose services run in containers:
    /// `postgres = "docker exec -i patroni sh -c {}"`; `{}` is the probe command, quoted.
    #[serde(default)]
    probe_wrap: BTreeMap<String, String>,
}

/// What `kbz.toml` beside the inventory says about the fleet besides its cluster rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetConfig {
    pub vars: BTreeMap<String, String>,
    pub endpoints: BTreeMap<String, String>,
    pub probe_wrap: BTreeMap<String, String>,
}

/// The fleet's `kbz.toml` (all empty without the file).
pub fn fleet_config(inventory: &Path) -> Result<FleetConfig, String> {
    let path = inventory
        .parent()
        .unwrap_or(Path::new("."))
        .join("kbz.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let k: KbzToml =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            for (cluster, wrap) in &k.probe_wrap {
                if !wrap.contains("{}") {
                    return Err(format!(
                        "{}: probe_wrap.{cluster} has no {{}} where the probe command goes",
                        path.display()
                    ));
                }
            }
            Ok(FleetConfig {
                vars: k.vars,
                endpoints: k.endpoints,
                probe_wrap: k.probe_wrap,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FleetConfig::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The `[vars]` of `kbz.toml` beside the inventory (none without the file).
pub fn vars_for_inventory(inventory: &Path) -> Result<BTreeMap<String, String>, String> {
    fleet_config(inventory).map(|c| c.vars)
}

impl RuleSet {
    pub fn builtin() -> RuleSet {
        let rules = BUILTIN
            .iter()
            .map(|(technology, name, across_pools, when)| Rule {
                technology: *technology,
                name: (*name).to_string(),
                when: when
                    .iter()
                    .map(|(c, p)| ((*c).to_string(), (*p).to_string()))
                    .collect(),
                across_pools: *across_pools,
            })
            .collect();
        RuleSet { rules }
    }

    /// The first rule matching the host, if any.
    pub fn detect(&self, host: &Host) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(host))
    }

    /// Built-in rules, preceded (or replaced) by those of `kbz.toml` beside the inventory.
    pub fn for_inventory(inventory: &Path) -> Result<RuleSet, InventoryError> {
        let path = inventory
            .parent()
            .unwrap_or(Path::new("."))
            .join("kbz.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => RuleSet::from_toml(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RuleSet::builtin()),
            Err(e) => Err(InventoryError {
                problems: vec![Problem::new(&path, 0, 0, format!("cannot read: {e}"))],
                file: path,
            }),
        }
    }

    pub fn from_toml(path: &Path, text: &str) -> Result<RuleSet, InventoryError> {
        let parsed: KbzToml = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| line_col(text, s.start))
                .unwrap_or((0, 0));
            InventoryError {
                file: path.to_path_buf(),
                problems: vec![Problem::new(path, line, column, e.message().trim().to_string())
                    .hint(format!(
                        "a rule is [[cluster]] with technology (one of {}), name, when = {{ COLUMN = \"glob\" }}",
                        Technology::ALL.map(Technology::id).join(", ")
                    ))],
            }
        })?;
        let mut rules = parsed.cluster;
        if !parsed.replace_builtin_rules {
            rules.extend(RuleSet::builtin().rules);
        }
        Ok(RuleSet { rules })
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
