//! HAProxy's stats socket (`show stat`, CSV): which server of each backend is up and so takes
//! the traffic.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    /// UP, DOWN, MAINT, "DOWN 1/2"...
    pub status: String,
}

impl Server {
    pub fn up(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ")
    }
}

/// Backend name -> its servers (the FRONTEND and BACKEND summary rows left out).
pub fn parse(csv: &str) -> Result<BTreeMap<String, Vec<Server>>, String> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or("show stat: no header line")?;
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("show stat: no {name} column"))
    };
    let (px, sv, st) = (col("pxname")?, col("svname")?, col("status")?);
    let mut out: BTreeMap<String, Vec<Server>> = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(p), Some(s), Some(status)) = (f.get(px), f.get(sv), f.get(st)) else {
            continue;
        };
        if *s == "FRONTEND" || *s == "BACKEND" {
            continue;
        }
        out.entry(p.to_string()).or_default().push(Server {
            name: s.to_string(),
            status: status.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn healthy_backends_route_to_the_leader_and_the_master() {
        let b = parse(&fixture("haproxy/show-stat-healthy.csv")).unwrap();
        let up = |name: &str| -> Vec<String> {
            b[name]
                .iter()
                .filter(|s| s.up())
                .map(|s| s.name.clone())
                .collect()
        };
        assert_eq!(up("postgres_primary"), ["db-master-01"]);
        assert_eq!(up("redis_master"), ["redis-01"]);
        assert_eq!(b["postgres_primary"].len(), 3);
        assert!(!b.contains_key("stats"), "no server rows in stats");
    }
}
