//! `kbz inventory check|show`.

use super::{Global, InventoryCommand};
use crate::inventory::{Fleet, Inventory, RuleSet};
use color_eyre::eyre::{Result, eyre};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(global: &Global, cmd: InventoryCommand) -> Result<ExitCode> {
    match cmd {
        InventoryCommand::Check { file } => check(&resolve(global, file)?, global),
        InventoryCommand::Show { file, json } => show(&resolve(global, file)?, global, json),
    }
}

fn resolve(global: &Global, file: Option<PathBuf>) -> Result<PathBuf> {
    match file {
        Some(f) => Ok(f),
        None => Ok(super::inventory_path(global)?.0),
    }
}

/// Loads the inventory and the fleet of the chosen ENV; errors are returned for printing.
pub fn load_fleet(file: &Path, env: Option<&str>) -> Result<Fleet> {
    let inventory = Inventory::load(file)?;
    let rules = RuleSet::for_inventory(file)?;
    Fleet::new(&inventory, env, &rules).map_err(|e| eyre!(e))
}

fn check(file: &Path, global: &Global) -> Result<ExitCode> {
    let inventory = match Inventory::load(file) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let rules = match RuleSet::for_inventory(file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let envs = inventory.envs();
    let fleet = Fleet::new(&inventory, global.env.as_deref(), &rules).map_err(|e| eyre!(e))?;
    outln!(
        "{}: ok, {} hosts in {} ENV{} ({}); ENV {}: {} hosts, {} clusters, {} host(s) outside clusters",
        file.display(),
        inventory.hosts.len(),
        envs.len(),
        if envs.len() == 1 { "" } else { "s" },
        envs.join(", "),
        fleet.env,
        fleet.hosts.len(),
        fleet.clusters.len(),
        fleet.plain_hosts().count(),
    );
    Ok(ExitCode::SUCCESS)
}

fn show(file: &Path, global: &Global, as_json: bool) -> Result<ExitCode> {
    let fleet = load_fleet(file, global.env.as_deref())?;
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&fleet_json(&fleet))?);
        return Ok(ExitCode::SUCCESS);
    }
    let others: Vec<&String> = fleet.envs.iter().filter(|e| **e != fleet.env).collect();
    out!(
        "{}  ENV {}  {} hosts",
        file.display(),
        fleet.env,
        fleet.hosts.len()
    );
    if !others.is_empty() {
        out!(
            "  (also in the file: {}; use --env)",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    outln!("");
    let width = fleet
        .hosts
        .iter()
        .map(|h| h.hostname.len())
        .max()
        .unwrap_or(8);
    for c in &fleet.clusters {
        outln!(
            "\n{}  {}  {} host{}  pool {}",
            c.name,
            c.technology.label(),
            c.hosts.len(),
            if c.hosts.len() == 1 { "" } else { "s" },
            c.pools.join(", ")
        );
        for h in c.hosts.iter().filter_map(|n| fleet.host(n)) {
            print_host(h, width);
        }
    }
    let plain: Vec<_> = fleet.plain_hosts().collect();
    if !plain.is_empty() {
        outln!(
            "\nother hosts  {} host{}",
            plain.len(),
            if plain.len() == 1 { "" } else { "s" }
        );
        for h in plain {
            print_host(h, width);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_host(h: &crate::inventory::Host, width: usize) {
    outln!(
        "  {:width$}  {:15}  {:<10} {:<18} {}",
        h.hostname,
        h.ip_private.to_string(),
        h.role,
        h.subrole,
        h.notes
    );
}

/// The JSON of `inventory show`, also the shape scripts rely on: keep fields stable.
pub fn fleet_json(fleet: &Fleet) -> serde_json::Value {
    let hosts: Vec<_> = fleet
        .hosts
        .iter()
        .map(|h| {
            let mut v = json!({
                "hostname": h.hostname,
                "ip_private": h.ip_private,
                "ip_public": h.ip_public,
                "env": h.env,
                "fqdn": h.fqdn,
                "user": h.user,
                "pool": h.pool,
                "role": h.role,
                "subrole": h.subrole,
                "docker_stack": h.docker_stack,
                "core": h.core,
                "notes": h.notes,
                "extra": h.extra,
                "cluster": fleet.cluster_of(&h.hostname).map(|c| c.name.clone()),
                "technology": fleet.cluster_of(&h.hostname).map(|c| c.technology),
            });
            v["line"] = json!(h.line);
            v
        })
        .collect();
    json!({
        "file": fleet.source,
        "env": fleet.env,
        "envs": fleet.envs,
        "hosts": hosts,
        "clusters": fleet.clusters,
    })
}
