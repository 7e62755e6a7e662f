//! Doctor's rules for ProxySQL in front of Galera: a writer hostgroup with no ONLINE server,
//! servers SHUNNED or OFFLINE (all of them: nothing is served), more than one writer (`max_writers`,
//! or two proxies writing to different members), its monitor failing to log in or seeing a
//! member that takes no write still ONLINE as a writer, a proxy whose admin is silent.

use super::proxy::Proxy;
use super::tables::Server;
use crate::probe::{Severity, Warning};

const RELOAD: &str = "LOAD MYSQL SERVERS TO RUNTIME; SAVE MYSQL SERVERS TO DISK;";

pub(super) fn warnings(proxies: &[Proxy], name: &dyn Fn(&str) -> String) -> Vec<Warning> {
    let mut out = Vec::new();
    for p in proxies {
        let h = &p.host;
        if let Some(e) = &p.error {
            if proxies.iter().any(Proxy::answered) {
                out.push(Warning {
                    severity: Severity::Warning,
                    what: format!("{h}: ProxySQL's admin does not answer ({e})"),
                    why: "its clients' queries go through a proxy kbz cannot see: it may send them to a member the others left".into(),
                    fix: format!("on {h}: check ProxySQL is running and listens on its admin port (127.0.0.1:6032), and that kbz can read its credentials"),
                });
            }
            continue;
        }
        writers(p, name, &mut out);
        shunned(p, name, &mut out);
        monitor(p, name, &mut out);
    }
    disagreeing(proxies, name, &mut out);
    out
}

fn writers(p: &Proxy, name: &dyn Fn(&str) -> String, out: &mut Vec<Warning>) {
    let h = &p.host;
    for g in p.galera.iter().filter(|g| g.active) {
        let online = p.online(g.writer);
        if online.is_empty() {
            out.push(Warning {
                severity: Severity::Critical,
                what: format!("{h}: writer hostgroup {} has no ONLINE server", g.writer),
                why: "ProxySQL holds every write until mysql-connect_timeout_server_max, then fails it: the application cannot write".into(),
                fix: format!("see what ProxySQL's monitor says of the members (`SELECT * FROM monitor.mysql_server_galera_log ORDER BY time_start_us DESC LIMIT 6` on {h}'s admin port) and the cluster itself (`kbz doctor` on the Galera cluster)"),
            });
        }
        if g.max_writers > 1 {
            out.push(Warning {
                severity: Severity::Warning,
                what: format!("{h}: max_writers = {} for writer hostgroup {}", g.max_writers, g.writer),
                why: "writes reach several Galera members at once: concurrent writes to the same rows fail certification (deadlock, error 1213), and Jepsen found lost updates in multi-writer Galera".into(),
                fix: format!("UPDATE mysql_galera_hostgroups SET max_writers = 1 WHERE writer_hostgroup = {}; {RELOAD}", g.writer),
            });
        }
        for c in &p.checks {
            let Some(what) = c.not_serving() else {
                continue;
            };
            if online
                .iter()
                .any(|s| s.hostname == c.hostname && s.port == c.port)
            {
                out.push(Warning {
                    severity: Severity::Critical,
                    what: format!("{h} writes to {}, which its monitor sees {what}", name(&c.hostname)),
                    why: "that member refuses writes (ERROR 1047) or is behind: ProxySQL should have moved it out of the writer hostgroup".into(),
                    fix: format!("check mysql-monitor_galera_healthcheck_interval and the monitor's errors on {h}; move it by hand: `UPDATE mysql_servers SET status = 'OFFLINE_SOFT' WHERE hostname = '{}'; {RELOAD}`", c.hostname),
                });
            }
        }
    }
}

/// Servers ProxySQL sends nothing: SHUNNED (its pings or connects failed), OFFLINE_SOFT or
/// OFFLINE_HARD (set so by hand or by a scheduler script). In a Galera writer hostgroup that
/// has its ONLINE writers, the others are SHUNNED by design: that is how ProxySQL holds back
/// writers beyond `max_writers` (both public captures of a healthy Galera behind ProxySQL in
/// the fixtures show it).
fn shunned(p: &Proxy, name: &dyn Fn(&str) -> String, out: &mut Vec<Warning>) {
    let h = &p.host;
    let held_back = |s: &Server| {
        p.live(s).starts_with("SHUNNED")
            && p.writer_hostgroups().contains(&s.hostgroup)
            && !p.online(s.hostgroup).is_empty()
    };
    let idle: Vec<&Server> = p.servers.iter().filter(|s| p.live(s) != "ONLINE").collect();
    let all = !p.servers.is_empty() && idle.len() == p.servers.len();
    let listed: Vec<String> = idle
        .iter()
        .filter(|s| all || !held_back(s))
        .map(|s| {
            format!(
                "{} {} (hostgroup {})",
                name(&s.hostname),
                p.live(s),
                s.hostgroup
            )
        })
        .collect();
    if listed.is_empty() {
        return;
    }
    out.push(Warning {
        severity: if all { Severity::Critical } else { Severity::Warning },
        what: if all {
            format!("{h}: no backend server is ONLINE")
        } else {
            format!("{h}: not serving: {}", listed.join(", "))
        },
        why: if all {
            "ProxySQL sends nothing anywhere: every query fails".into()
        } else {
            "ProxySQL sends such a server nothing: a SHUNNED one until it answers again, an OFFLINE one until someone sets it ONLINE".into()
        },
        fix: format!("see the monitor's connect and ping logs on {h} (`SELECT * FROM monitor.mysql_server_ping_log ORDER BY time_start_us DESC LIMIT 6`) and check the members themselves"),
    });
}

fn monitor(p: &Proxy, name: &dyn Fn(&str) -> String, out: &mut Vec<Warning>) {
    let h = &p.host;
    let mut seen = Vec::new();
    for c in p.checks.iter().chain(&p.connects).chain(&p.pings) {
        let Some(e) = &c.error else { continue };
        let server = name(&c.hostname);
        if seen.contains(&server) {
            continue;
        }
        seen.push(server.clone());
        let denied = e.contains("Access denied");
        out.push(if denied {
            Warning {
                severity: Severity::Critical,
                what: format!("{h}: its monitor user cannot log in to {server} ({e})"),
                why: "ProxySQL no longer sees the members' Galera state: it cannot move a non-Primary member out of the writer hostgroup".into(),
                fix: "create the monitor user on the Galera members (`CREATE USER 'monitor'@'%' IDENTIFIED BY ...`) or point ProxySQL at an existing one: `UPDATE global_variables SET variable_value = ... WHERE variable_name IN ('mysql-monitor_username', 'mysql-monitor_password'); LOAD MYSQL VARIABLES TO RUNTIME; SAVE MYSQL VARIABLES TO DISK;`".into(),
            }
        } else {
            Warning {
                severity: Severity::Warning,
                what: format!("{h}: its monitor cannot check {server} ({e})"),
                why: "ProxySQL routes on what it last saw of that member".into(),
                fix: format!("check {server} answers on its port from {h} (network, MariaDB running, max_connections)"),
            }
        });
    }
}

/// Two proxies writing to different members make a multi-writer cluster of a single-writer
/// configuration.
fn disagreeing(proxies: &[Proxy], name: &dyn Fn(&str) -> String, out: &mut Vec<Warning>) {
    let writes: Vec<(String, Vec<String>)> = proxies
        .iter()
        .filter(|p| p.answered())
        .map(|p| {
            let mut w: Vec<String> = p.writers().iter().map(|s| name(&s.hostname)).collect();
            w.sort();
            (p.host.clone(), w)
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    if writes.windows(2).all(|w| w[0].1 == w[1].1) {
        return;
    }
    let said: Vec<String> = writes
        .iter()
        .map(|(p, w)| format!("{p} to {}", w.join(", ")))
        .collect();
    out.push(Warning {
        severity: Severity::Warning,
        what: format!("the proxies write to different members: {}", said.join("; ")),
        why: "two members take writes at once: concurrent writes to the same rows fail certification, and updates can be lost".into(),
        fix: format!("give every proxy the same mysql_servers weights and mysql_galera_hostgroups (ProxySQL Cluster, or the same configuration), then {RELOAD}"),
    });
}
