//! One Galera member as it says it is (its wsrep status, settings, saved state, and for how
//! long in its state), and the Primary component most of them are in.

use crate::watch::{Readings, failure, section};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `name<TAB>value` lines, as `mariadb --batch --skip-column-names` prints SHOW STATUS.
pub fn pairs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What module 7's health endpoint says of a member whose MariaDB does not answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Grastate {
    pub uuid: Option<String>,
    pub seqno: Option<i64>,
    pub safe_to_bootstrap: Option<u8>,
    /// The position `--wsrep-recover` found (module 7 runs it after a crash).
    pub recovered: Option<i64>,
    #[serde(default)]
    pub running: bool,
}

/// One member as it says it is.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub host: String,
    /// Its wsrep status; None when MariaDB did not answer.
    pub wsrep: Option<BTreeMap<String, String>>,
    pub variables: BTreeMap<String, String>,
    pub grastate: Option<Grastate>,
    /// Why it did not answer.
    pub error: Option<String>,
    /// For how many seconds it has been in its state, as module 7's health endpoint saw it.
    pub state_for: Option<u64>,
}

/// Module 7's health endpoint's `/state`.
#[derive(Deserialize)]
struct StateFor {
    state: String,
    seconds: u64,
}

impl Node {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.wsrep.as_ref()?.get(name).map(String::as_str)
    }

    fn num(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    pub fn primary(&self) -> bool {
        self.get("wsrep_cluster_status") == Some("Primary")
    }

    pub fn state(&self) -> &str {
        self.get("wsrep_local_state_comment").unwrap_or("?")
    }

    pub fn synced(&self) -> bool {
        self.primary() && self.state() == "Synced" && self.get("wsrep_ready") == Some("ON")
    }

    /// Its view's id; a non-Primary member says -1 (as an unsigned 2^64-1): no view.
    pub fn conf_id(&self) -> Option<u64> {
        self.num("wsrep_cluster_conf_id").filter(|c| *c != u64::MAX)
    }

    pub fn size(&self) -> Option<u64> {
        self.num("wsrep_cluster_size")
    }

    pub fn last_committed(&self) -> Option<u64> {
        self.num("wsrep_last_committed")
    }

    /// Which component it is in: Primary ones by state uuid and view.
    pub fn component(&self) -> Option<(String, u64)> {
        self.primary().then(|| {
            (
                self.get("wsrep_cluster_state_uuid")
                    .unwrap_or("")
                    .to_string(),
                self.conf_id().unwrap_or(0),
            )
        })
    }
}

/// Each member's reading, in inventory order.
pub fn nodes(r: &Readings<'_>) -> Vec<Node> {
    r.cluster
        .hosts
        .iter()
        .map(|h| {
            let mut n = Node {
                host: h.clone(),
                ..Node::default()
            };
            match r.readings.iter().find(|(on, _)| on == h).map(|(_, s)| s) {
                None => n.error = Some("no answer".into()),
                Some(Err(e)) => n.error = Some(e.clone()),
                Some(Ok(s)) => match section(s, 0) {
                    Some(t) if !t.starts_with("ERROR ") => {
                        n.wsrep = Some(pairs(t));
                        n.variables = section(s, 1).map(pairs).unwrap_or_default();
                        n.state_for = section(s, 3)
                            .and_then(|j| serde_json::from_str::<StateFor>(j).ok())
                            .filter(|f| {
                                n.get("wsrep_local_state_comment") == Some(f.state.as_str())
                            })
                            .map(|f| f.seconds);
                    }
                    other => {
                        n.error = Some(other.map_or(failure(s, 0), |t| t).to_string());
                        n.grastate = section(s, 2).and_then(|g| serde_json::from_str(g).ok());
                    }
                },
            }
            n
        })
        .collect()
}

/// The Primary component most members are in (the highest view on a tie): its (uuid,
/// conf_id) and members.
pub fn main_component(nodes: &[Node]) -> Option<((String, u64), Vec<&Node>)> {
    let mut by: BTreeMap<(String, u64), Vec<&Node>> = BTreeMap::new();
    for n in nodes {
        if let Some(c) = n.component() {
            by.entry(c).or_default().push(n);
        }
    }
    by.into_iter()
        .max_by_key(|(c, members)| (members.len(), c.1))
}
