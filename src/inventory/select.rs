//! Host selectors, as typed after `kbz exec`: host names, globs (`redis-*`), cluster names,
//! `all`, comma-separated.

use super::{Fleet, Host, glob};

/// The hosts a selector names, in inventory order, each once. A term that matches nothing is
/// an error: a typo must not silently shrink the set of hosts a command runs on.
pub fn select<'a>(fleet: &'a Fleet, selector: &str) -> Result<Vec<&'a Host>, String> {
    let mut chosen = vec![false; fleet.hosts.len()];
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let mut matched = false;
        for (i, h) in fleet.hosts.iter().enumerate() {
            let hit = term == "all"
                || h.hostname == term
                || (glob::is_pattern(term) && glob::matches(term, &h.hostname))
                || fleet
                    .cluster(term)
                    .is_some_and(|c| c.hosts.contains(&h.hostname));
            if hit {
                chosen[i] = true;
                matched = true;
            }
        }
        if !matched {
            let clusters: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "{term:?} matches no host of {} (ENV {}): use host names, globs like redis-*, \
                 all, or a cluster: {}",
                fleet.source.display(),
                fleet.env,
                clusters.join(", ")
            ));
        }
    }
    let hosts: Vec<&Host> = fleet
        .hosts
        .iter()
        .zip(chosen)
        .filter_map(|(h, c)| c.then_some(h))
        .collect();
    if hosts.is_empty() {
        return Err("empty selector: name hosts, globs, clusters or all".into());
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Inventory, RuleSet};
    use std::path::Path;

    fn fleet() -> Fleet {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers.example.tsv");
        let inv = Inventory::load(&path).unwrap();
        Fleet::new(&inv, None, &RuleSet::builtin()).unwrap()
    }

    fn names(f: &Fleet, sel: &str) -> Vec<String> {
        select(f, sel)
            .unwrap()
            .iter()
            .map(|h| h.hostname.clone())
            .collect()
    }

    #[test]
    fn selectors() {
        let f = fleet();
        assert_eq!(names(&f, "all").len(), 29);
        assert_eq!(names(&f, "redis-*"), ["redis-01", "redis-02", "redis-03"]);
        assert_eq!(
            names(&f, "postgres"),
            ["db-master-01", "db-slave-01", "db-slave-02"]
        );
        assert!(
            select(&f, "install-01,redis-0[1]").is_err(),
            "[ is no glob character here: the whole selector fails"
        );
    }

    #[test]
    fn unknown_terms_are_errors() {
        let f = fleet();
        let e = select(&f, "redis-01,nope-*").unwrap_err();
        assert!(e.contains("\"nope-*\" matches no host"), "{e}");
        assert!(e.contains("postgres, redis"), "{e}");
        assert!(select(&f, " , ").is_err());
        assert_eq!(
            names(&f, "install-01,redis-01,install-01,k3s").len(),
            10,
            "dedup and inventory order"
        );
    }
}
