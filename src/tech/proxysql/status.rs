//! The ProxySQL proxies from their admin tables. Proxies are peers (no leader, no quorum):
//! each member's state is the Galera member it writes to; the routes are each hostgroup's
//! ONLINE servers, as the first proxy that answered has them.

use super::doctor;
use super::proxy::{Proxy, name_of};
use crate::inventory::Technology;
use crate::probe::{ClusterStatus, Member};
use crate::watch::Readings;
use std::collections::BTreeMap;

pub fn status(r: Readings<'_>) -> Result<ClusterStatus, String> {
    let proxies: Vec<Proxy> = r
        .cluster
        .hosts
        .iter()
        .map(|h| match r.readings.iter().find(|(on, _)| on == h) {
            None => Proxy {
                host: h.clone(),
                error: Some("no answer".into()),
                ..Proxy::default()
            },
            Some((_, Err(e))) => Proxy {
                host: h.clone(),
                error: Some(e.clone()),
                ..Proxy::default()
            },
            Some((_, Ok(s))) => Proxy::from_sections(h, s),
        })
        .collect();
    if !proxies.iter().any(Proxy::answered) {
        let why: Vec<String> = proxies
            .iter()
            .map(|p| format!("{}: {}", p.host, p.error.as_deref().unwrap_or("?")))
            .collect();
        return Err(format!("no ProxySQL admin answers: {}", why.join("; ")));
    }
    let name = |h: &str| name_of(r.hosts, h);
    let members = proxies
        .iter()
        .map(|p| Member {
            host: p.host.clone(),
            role: "proxy".into(),
            state: match &p.error {
                Some(e) => format!("down: {e}"),
                None => {
                    let writers: Vec<String> =
                        p.writers().iter().map(|s| name(&s.hostname)).collect();
                    match writers.as_slice() {
                        [] if p.galera.is_empty() => "running".into(),
                        [] => "NO WRITER".into(),
                        w => format!("writes to {}", w.join(", ")),
                    }
                }
            },
            up: p.answered(),
            lag: None,
            epoch: None,
        })
        .collect();
    let mut routes = BTreeMap::new();
    if let Some(p) = proxies.iter().find(|p| p.answered()) {
        let mut hostgroups: Vec<u64> = p.servers.iter().map(|s| s.hostgroup).collect();
        hostgroups.sort_unstable();
        hostgroups.dedup();
        for hg in hostgroups {
            routes.insert(
                format!("{} {hg}", p.purpose(hg)),
                p.online(hg).iter().map(|s| name(&s.hostname)).collect(),
            );
        }
    }
    Ok(ClusterStatus {
        cluster: r.cluster.name.clone(),
        technology: Technology::Proxysql,
        members,
        leader: None,
        epoch_name: "",
        epoch: None,
        quorum: None,
        warnings: doctor::warnings(&proxies, &name),
        routes,
        groups: Vec::new(),
        peers: true,
    })
}
