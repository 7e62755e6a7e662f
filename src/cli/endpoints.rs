//! `kbz endpoints [--json] [--via HOST]`: each service endpoint checked in its own protocol
//! through an SSH tunnel, as an application would reach it.

use super::Global;
use super::remote::{self, Painter};
use crate::engine::endpoints::{Credentials, check_all, endpoints_of, via_host};
use crate::modules::secrets::Secrets;
use crate::paths::Paths;
use color_eyre::eyre::{Result, eyre};
use std::process::ExitCode;

/// Exit 1 when an endpoint fails its check.
pub fn run(global: &Global, json: bool, via: Option<&str>) -> Result<ExitCode> {
    let (fleet, pool) = remote::fleet_and_pool(global)?;
    let paths = Paths::from_env().map_err(|e| eyre!(e))?;
    let endpoints = endpoints_of(&fleet, &paths.state).map_err(|e| eyre!(e))?;
    if endpoints.is_empty() {
        return Err(eyre!(
            "no endpoints known for ENV {}: install the load-balancer module (kbz install --module 8) \
             or list them under [endpoints] in kbz.toml beside the inventory",
            fleet.env
        ));
    }
    let via = via_host(&fleet, via).map_err(|e| eyre!(e))?;
    let secrets = Secrets::load(&paths.state, &fleet.env).map_err(|e| eyre!(e))?;
    let creds = Credentials::from_secrets(&secrets.values);
    let checks = remote::runtime()?.block_on(check_all(&pool, &fleet, via, &endpoints, &creds));
    let failed = checks.iter().filter(|c| !c.ok).count();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&checks).unwrap_or_default()
        );
    } else {
        let p = Painter::for_stdout();
        let name_w = checks.iter().map(|c| c.name.len()).max().unwrap_or(8);
        let addr_w = checks.iter().map(|c| c.address.len()).max().unwrap_or(8);
        outln!(
            "endpoints of ENV {}, through an SSH tunnel from {}",
            fleet.env,
            via.hostname
        );
        for c in &checks {
            let rtt = c
                .rtt_ms
                .map(|r| format!("{r:7.1} ms"))
                .unwrap_or_else(|| "       -  ".into());
            let (tag, detail) = if c.ok {
                ("ok  ".to_string(), c.detail.clone())
            } else {
                (p.bad("FAIL"), p.bad(&c.detail))
            };
            outln!(
                "  {:name_w$}  {:addr_w$}  {:8}  {tag}  {rtt}  {detail}",
                c.name,
                c.address,
                c.protocol
            );
        }
        if failed > 0 {
            outln!("{failed} of {} endpoint(s) failed", checks.len());
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
