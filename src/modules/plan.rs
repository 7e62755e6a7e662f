//! What a run will do, before it does it: modules x hosts x phases, and the inventory facts
//! each host's script gets in its environment (quoted, never pasted).

use super::catalogue::{Catalogue, Module, Phase};
use crate::inventory::{Fleet, Host};
use crate::ssh::quote::quote;
use serde::Serialize;
use std::collections::BTreeMap;

/// Which modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    One(u32),
    From(u32),
    All,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedModule {
    pub number: u32,
    pub name: String,
    pub title: String,
    pub hosts: Vec<String>,
    pub phases: Vec<Phase>,
    /// Runs as one external command on this host (the orchestrator).
    pub external: bool,
    pub wipes: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `install` or `cleanup`.
    pub command: String,
    pub env: String,
    pub modules: Vec<PlannedModule>,
    /// The fleet's `[vars]` (kbz.toml beside the inventory).
    pub vars: BTreeMap<String, String>,
}

/// Install: cleanup (unless skipped), install, verify, module after module. Cleanup: only
/// cleanup, last module first (what was built last is torn down first).
pub fn plan(
    catalogue: &Catalogue,
    fleet: &Fleet,
    vars: &BTreeMap<String, String>,
    selection: Selection,
    install: bool,
    skip_cleanup: bool,
) -> Result<Plan, String> {
    let chosen: Vec<&Module> = match selection {
        Selection::One(n) => vec![catalogue.get(n).ok_or_else(|| unknown(catalogue, n))?],
        Selection::From(n) => {
            if catalogue.get(n).is_none() && catalogue.modules.iter().all(|m| m.number() < n) {
                return Err(unknown(catalogue, n));
            }
            catalogue
                .modules
                .iter()
                .filter(|m| m.number() >= n)
                .collect()
        }
        Selection::All => catalogue.modules.iter().collect(),
    };
    let mut modules = Vec::new();
    for m in chosen {
        let phases: Vec<Phase> = if install {
            [Phase::Cleanup, Phase::Install, Phase::Verify]
                .into_iter()
                .filter(|p| !(skip_cleanup && *p == Phase::Cleanup))
                .filter(|p| m.script(*p).is_some() || m.external(*p).is_some())
                .collect()
        } else if m.script(Phase::Cleanup).is_some() || m.external(Phase::Cleanup).is_some() {
            vec![Phase::Cleanup]
        } else {
            continue;
        };
        if let Some(missing) = m.manifest.vars.iter().find(|v| !vars.contains_key(*v)) {
            return Err(format!(
                "module {} ({}) needs {missing}: set it under [vars] in kbz.toml beside the \
                 inventory ({missing} = \"...\")",
                m.number(),
                m.manifest.name
            ));
        }
        let external = m.manifest.external.is_some();
        let hosts = if external {
            let orchestrator = fleet
                .hosts
                .iter()
                .find(|h| h.role == "orchestrator")
                .ok_or_else(|| {
                    format!(
                        "module {} runs on the orchestrator, and no host of ENV {} has ROLE orchestrator",
                        m.number(),
                        fleet.env
                    )
                })?;
            vec![orchestrator.hostname.clone()]
        } else {
            targets(m, fleet)
        };
        if hosts.is_empty() {
            return Err(format!(
                "module {} ({}) has no target host in ENV {}",
                m.number(),
                m.manifest.name,
                fleet.env
            ));
        }
        modules.push(PlannedModule {
            number: m.number(),
            name: m.manifest.name.clone(),
            title: m.manifest.title.clone(),
            hosts,
            phases,
            external,
            wipes: m.manifest.wipes.clone(),
        });
    }
    if !install {
        modules.reverse();
    }
    Ok(Plan {
        command: if install { "install" } else { "cleanup" }.into(),
        env: fleet.env.clone(),
        modules,
        vars: vars.clone(),
    })
}

impl Plan {
    /// The secrets the planned modules' scripts need.
    pub fn secret_names(&self, catalogue: &Catalogue) -> Vec<String> {
        self.modules
            .iter()
            .filter_map(|pm| catalogue.get(pm.number))
            .flat_map(|m| m.manifest.secrets.clone())
            .collect()
    }
}

fn unknown(catalogue: &Catalogue, n: u32) -> String {
    let list: Vec<String> = catalogue
        .modules
        .iter()
        .map(|m| format!("{} {}", m.number(), m.manifest.name))
        .collect();
    format!("no module {n} (modules: {})", list.join(", "))
}

/// The hosts a module's scripts run on, in inventory order.
fn targets(m: &Module, fleet: &Fleet) -> Vec<String> {
    let t = &m.manifest.targets;
    fleet
        .hosts
        .iter()
        .filter(|h| {
            t.all
                || t.roles.contains(&h.role)
                || fleet.clusters.iter().any(|c| {
                    t.technologies.contains(&c.technology) && c.hosts.contains(&h.hostname)
                })
        })
        .map(|h| h.hostname.clone())
        .collect()
}

/// The environment a script starts with: who it runs on, its cluster, the whole ENV's hosts,
/// the secrets it asked for. Every value is shell-quoted.
pub fn preamble(
    fleet: &Fleet,
    vars: &BTreeMap<String, String>,
    module: &Module,
    phase: Phase,
    host: &Host,
    secrets: &BTreeMap<String, String>,
) -> String {
    let mut vars_out: Vec<(String, String)> = vec![
        ("KBZ_ENV".into(), fleet.env.clone()),
        ("KBZ_MODULE".into(), module.number().to_string()),
        ("KBZ_PHASE".into(), phase.name().into()),
        ("KBZ_HOST".into(), host.hostname.clone()),
        ("KBZ_IP".into(), host.ip_private.to_string()),
        ("KBZ_ROLE".into(), host.role.clone()),
        ("KBZ_SUBROLE".into(), host.subrole.clone()),
        ("KBZ_POOL".into(), host.pool.clone()),
    ];
    let cluster = fleet
        .clusters
        .iter()
        .find(|c| c.hosts.contains(&host.hostname));
    if let Some(c) = cluster {
        let members: Vec<&Host> = c.hosts.iter().filter_map(|n| fleet.host(n)).collect();
        vars_out.push(("KBZ_CLUSTER".into(), c.name.clone()));
        vars_out.push((
            "KBZ_MEMBERS".into(),
            members
                .iter()
                .map(|m| format!("{}={}", m.hostname, m.ip_private))
                .collect::<Vec<_>>()
                .join(" "),
        ));
        // The inventory's initial primary: SUBROLE master / primary, else the first member.
        let first = members
            .iter()
            .find(|m| matches!(m.subrole.as_str(), "master" | "primary"))
            .or(members.first());
        if let Some(f) = first {
            vars_out.push(("KBZ_INITIAL_PRIMARY".into(), f.hostname.clone()));
            vars_out.push(("KBZ_INITIAL_PRIMARY_IP".into(), f.ip_private.to_string()));
        }
    }
    // Every cluster of the ENV, for modules that route to others (load balancers):
    // "name:technology:host=ip,host=ip ...".
    vars_out.push((
        "KBZ_CLUSTERS".into(),
        fleet
            .clusters
            .iter()
            .map(|c| {
                let members: Vec<String> = c
                    .hosts
                    .iter()
                    .filter_map(|n| fleet.host(n))
                    .map(|m| format!("{}={}", m.hostname, m.ip_private))
                    .collect();
                format!("{}:{}:{}", c.name, c.technology.id(), members.join(","))
            })
            .collect::<Vec<_>>()
            .join(" "),
    ));
    vars_out.push((
        "KBZ_ALL_HOSTS".into(),
        fleet
            .hosts
            .iter()
            .map(|h| format!("{}={}", h.hostname, h.ip_private))
            .collect::<Vec<_>>()
            .join(" "),
    ));
    for (k, v) in vars {
        vars_out.push((format!("KBZ_VAR_{}", k.to_ascii_uppercase()), v.clone()));
    }
    for name in &module.manifest.secrets {
        let value = secrets.get(name).cloned().unwrap_or_default();
        vars_out.push((format!("KBZ_SECRET_{}", name.to_ascii_uppercase()), value));
    }
    let mut out = String::from("# set by kbz\n");
    for (k, v) in vars_out {
        out.push_str(&format!("export {k}={}\n", quote(&v)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Inventory, RuleSet};
    use std::path::Path;

    fn fleet() -> Fleet {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers.example.tsv");
        Fleet::new(&Inventory::load(&path).unwrap(), None, &RuleSet::builtin()).unwrap()
    }

    #[test]
    fn install_from_and_cleanup_orders() {
        let c = Catalogue::load(None).unwrap();
        let f = fleet();
        let none = BTreeMap::new();
        let err = plan(&c, &f, &none, Selection::From(2), true, false).unwrap_err();
        assert!(
            err.contains("module 8 (lb) needs haproxy_vip: set it under [vars] in kbz.toml"),
            "{err}"
        );
        let vars: BTreeMap<String, String> =
            [("haproxy_vip".to_string(), "10.0.0.10/24".to_string())].into();
        let p = plan(&c, &f, &vars, Selection::From(2), true, false).unwrap();
        let numbers: Vec<u32> = p.modules.iter().map(|m| m.number).collect();
        assert_eq!(numbers, [2, 3, 4, 5, 7, 8]);
        assert_eq!(
            p.modules[2].phases,
            [Phase::Cleanup, Phase::Install, Phase::Verify]
        );
        assert_eq!(p.modules[2].hosts, ["redis-01", "redis-02", "redis-03"]);
        assert_eq!(p.modules[0].hosts.len(), f.hosts.len(), "base everywhere");
        let p = plan(&c, &f, &none, Selection::One(4), true, true).unwrap();
        assert_eq!(p.modules[0].phases, [Phase::Install, Phase::Verify]);
        let p = plan(&c, &f, &vars, Selection::All, false, false).unwrap();
        let numbers: Vec<u32> = p.modules.iter().map(|m| m.number).collect();
        assert_eq!(
            numbers,
            [8, 7, 5, 4, 3, 2],
            "cleanup tears down the last first"
        );
        let err = plan(&c, &f, &none, Selection::One(9), true, false).unwrap_err();
        assert!(
            err.contains(
                "no module 9 (modules: 2 base, 3 postgres, 4 redis, 5 rabbitmq, 7 galera, 8 lb)"
            ),
            "{err}"
        );
    }

    #[test]
    fn preamble_quotes_every_value() {
        let c = Catalogue::load(None).unwrap();
        let mut f = fleet();
        f.hosts[3].subrole = "it's $(reboot)".into();
        let host = f.hosts[3].clone();
        let mut secrets = BTreeMap::new();
        secrets.insert("redis_password".to_string(), "s3cr3t-value".to_string());
        let p = preamble(
            &f,
            &BTreeMap::new(),
            c.get(4).unwrap(),
            Phase::Install,
            &host,
            &secrets,
        );
        assert!(p.contains("export KBZ_SUBROLE='it'\\''s $(reboot)'"), "{p}");
        assert!(
            p.contains("export KBZ_SECRET_REDIS_PASSWORD=s3cr3t-value"),
            "{p}"
        );
        assert!(p.contains("export KBZ_INITIAL_PRIMARY=redis-01"), "{p}");
        // Run it through bash: the values come out as they went in.
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{p}\nprintf %s \"$KBZ_SUBROLE\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $(reboot)");
    }
}
