//! The faults a failover test injects, each with the exact way to heal it. Remote faults are
//! shell commands run on the target over SSH; `crash` is the lab's host crash, healed by
//! booting the host again. Nothing from the inventory is pasted into a command unquoted.

use crate::inventory::{Cluster, Fleet};
use crate::ssh::quote::quote;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// systemctl stop of the service.
    Stop,
    /// SIGKILL to the service's processes, kept down (no restart) until healed.
    Kill,
    /// nftables drops the node's traffic with the other members of its cluster.
    Partition,
    /// SIGSTOP to the service's processes; SIGCONT heals.
    Freeze,
    /// The lab's host crash (every process of the host killed at once).
    Crash,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Stop,
        FaultKind::Kill,
        FaultKind::Partition,
        FaultKind::Freeze,
        FaultKind::Crash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Stop => "stop",
            FaultKind::Kill => "kill",
            FaultKind::Partition => "partition",
            FaultKind::Freeze => "freeze",
            FaultKind::Crash => "crash",
        }
    }
}

/// How to undo one injected fault: kept in the ledger until done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "lowercase")]
pub enum Heal {
    /// A command run on the host over SSH.
    Remote { command: String },
    /// A lab host fault from outside (`restart`, `thaw`, `restore`).
    Lab { fault: String },
}

/// A fault ready to inject on one host, and its heal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub kind: FaultKind,
    pub host: String,
    /// The command that injects it (remote faults), or None for lab faults.
    pub inject: Option<String>,
    pub heal: Heal,
}

/// The drop-in that keeps a killed service down until healed (Debian's units restart on
/// their own, which would turn a kill into a 100 ms blip).
fn no_restart_dropin(unit: &str) -> String {
    format!("/run/systemd/system/{unit}.service.d/kbz-fault.conf")
}

/// The fault `kind` on `host` of `cluster`. `lab`: the fleet is the lab (crash needs it).
pub fn plan(
    kind: FaultKind,
    fleet: &Fleet,
    cluster: &Cluster,
    host: &str,
    lab: bool,
) -> Result<Plan, String> {
    let unit = crate::tech::of(cluster.technology).unit.ok_or_else(|| {
        format!(
            "no failover test for {} yet ({})",
            cluster.technology.label(),
            crate::tech::labels(|t| t.workload.is_some())
        )
    })?;
    let u = quote(unit);
    let (inject, heal) = match kind {
        FaultKind::Stop => (
            format!("systemctl stop {u}"),
            // Not waiting for the start (a Galera member's takes its state transfer): the run
            // measures the way back.
            format!("systemctl start --no-block {u}"),
        ),
        FaultKind::Kill => {
            let dropin = quote(&no_restart_dropin(unit));
            let dir = quote(&format!("/run/systemd/system/{unit}.service.d"));
            (
                format!(
                    "mkdir -p {dir} && printf '[Service]\\nRestart=no\\n' > {dropin} && \
                     systemctl daemon-reload && systemctl kill --signal=KILL --kill-whom=all {u}"
                ),
                format!(
                    "rm -f {dropin}; systemctl daemon-reload; systemctl reset-failed {u} 2>/dev/null; \
                     systemctl start --no-block {u}"
                ),
            )
        }
        FaultKind::Freeze => (
            format!("systemctl kill --signal=STOP --kill-whom=all {u}"),
            format!("systemctl kill --signal=CONT --kill-whom=all {u}"),
        ),
        FaultKind::Partition => {
            // Inventory addresses are parsed IPv4 addresses: safe as they are.
            let peers: Vec<String> = cluster
                .hosts
                .iter()
                .filter(|h| *h != host)
                .filter_map(|h| fleet.host(h))
                .map(|h| h.ip_private.to_string())
                .collect();
            if peers.is_empty() {
                return Err(format!(
                    "{host} has no peers in {} to cut it from",
                    cluster.name
                ));
            }
            let set = peers.join(", ");
            let rules = format!(
                "table inet kbz_fault {{ chain in {{ type filter hook input priority -10; ip saddr {{ {set} }} drop; }}; \
                 chain out {{ type filter hook output priority -10; ip daddr {{ {set} }} drop; }}; }}"
            );
            (
                format!("printf '%s\\n' {} | nft -f -", quote(&rules)),
                "nft delete table inet kbz_fault 2>/dev/null; true".to_string(),
            )
        }
        FaultKind::Crash => {
            if !lab {
                return Err(
                    "crash is the lab's host crash: on a real fleet use kill, stop, partition or freeze"
                        .into(),
                );
            }
            return Ok(Plan {
                kind,
                host: host.to_string(),
                inject: None,
                heal: Heal::Lab {
                    fault: "restart".into(),
                },
            });
        }
    };
    Ok(Plan {
        kind,
        host: host.to_string(),
        inject: Some(inject),
        heal: Heal::Remote { command: heal },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Inventory, RuleSet};

    fn fleet() -> Fleet {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("servers.example.tsv");
        let inv = Inventory::load(&file).unwrap();
        Fleet::new(&inv, Some("prod"), &RuleSet::builtin()).unwrap()
    }

    #[test]
    fn every_fault_has_its_heal() {
        let f = fleet();
        let redis = f.clusters.iter().find(|c| c.name == "redis").unwrap();
        let host = redis.hosts[0].clone();
        let kill = plan(FaultKind::Kill, &f, redis, &host, false).unwrap();
        assert!(kill.inject.as_deref().unwrap().contains("Restart=no"));
        let Heal::Remote { command } = &kill.heal else {
            panic!()
        };
        assert!(
            command.contains("rm -f")
                && command.ends_with("systemctl start --no-block redis-server"),
            "{command}"
        );
        let part = plan(FaultKind::Partition, &f, redis, &host, false).unwrap();
        let inject = part.inject.unwrap();
        for other in &redis.hosts[1..] {
            let ip = f.host(other).unwrap().ip_private.to_string();
            assert!(inject.contains(&ip), "{inject}");
        }
        let own = f.host(&host).unwrap().ip_private.to_string();
        assert!(!inject.contains(&format!("{own},")) && !inject.contains(&format!("{own} }}")));
        assert!(
            plan(FaultKind::Crash, &f, redis, &host, false)
                .unwrap_err()
                .contains("lab")
        );
        assert_eq!(
            plan(FaultKind::Crash, &f, redis, &host, true).unwrap().heal,
            Heal::Lab {
                fault: "restart".into()
            }
        );
    }

    #[test]
    fn the_partition_rules_parse_in_a_real_shell() {
        // The quoted rule set reaches nft intact: printed by the same shell quoting.
        let f = fleet();
        let redis = f.clusters.iter().find(|c| c.name == "redis").unwrap();
        let p = plan(FaultKind::Partition, &f, redis, &redis.hosts[0], false).unwrap();
        let cmd = p.inject.unwrap().replace("| nft -f -", "");
        let out = std::process::Command::new("sh")
            .args(["-c", &cmd])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.starts_with("table inet kbz_fault { chain in {"),
            "{text}"
        );
        assert!(text.contains("drop; }; chain out"), "{text}");
        // And nft itself accepts it (check mode: nothing is applied).
        let check = std::process::Command::new("sh")
            .args(["-c", &format!("{cmd} | nft -c -f -")])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "nft -c refused the rules: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}
