//! Many members' views of one cluster, made one: each member says what it sees (they disagree
//! for a moment after a failover, and a member cut off from its peers keeps its own view), and
//! the status is the view to believe, plus what each member says of itself.

use super::{ClusterStatus, Severity, Warning};

/// The members' views as they are read, and why the others gave none.
#[derive(Default)]
pub struct Views {
    views: Vec<ClusterStatus>,
    errors: Vec<String>,
    /// Warnings about one member, kept from every view, not only the believed one.
    per_member: Vec<Warning>,
}

impl Views {
    /// One member's view (or why it has none); `per_member` picks its warnings that are about
    /// that member itself.
    pub fn add(
        &mut self,
        view: Result<ClusterStatus, String>,
        per_member: impl Fn(&Warning) -> bool,
    ) {
        match view {
            Ok(v) => {
                self.per_member
                    .extend(v.warnings.iter().filter(|w| per_member(w)).cloned());
                self.views.push(v);
            }
            Err(e) => self.errors.push(e),
        }
    }

    /// A member whose view could not be read (`what` says which, and why): the status says
    /// so, with `fix`, when the other members give one. The member's state stays the
    /// cluster's word: kbz not reaching it is not the cluster losing it.
    pub fn unreadable(&mut self, what: String, fix: String) {
        self.errors.push(what.clone());
        self.per_member.push(Warning {
            severity: Severity::Warning,
            what,
            why: "kbz reads the cluster through the other members meanwhile: what this one \
                  sees, and whether it still votes, is unknown"
                .into(),
            fix,
        });
    }

    /// The view to believe (see `believe`), with every member's own warnings.
    pub fn believed(self, cluster: &str) -> Result<ClusterStatus, String> {
        let mut best = believe(self.views).ok_or_else(|| {
            format!(
                "no member of {cluster} answered: {}",
                self.errors.join("; ")
            )
        })?;
        for w in self.per_member {
            if !best.warnings.contains(&w) {
                best.warnings.push(w);
            }
        }
        Ok(best)
    }
}

/// Of the members' views, the one with the highest epoch (a newer election); between views
/// at the same epoch, the one most members share (a leader cut off from its peers names
/// itself until it is demoted, alone); then the one with a leader. Arrival order never
/// decides, so the poller does not flap between views.
pub fn believe(views: Vec<ClusterStatus>) -> Option<ClusterStatus> {
    let votes = |v: &ClusterStatus| {
        views
            .iter()
            .filter(|o| o.leader == v.leader && o.epoch == v.epoch)
            .count()
    };
    let key = |v: &ClusterStatus| (v.epoch, votes(v), v.leader.is_some());
    let mut best: Option<&ClusterStatus> = None;
    for v in &views {
        if best.is_none_or(|b| key(v) > key(b)) {
            best = Some(v);
        }
    }
    best.cloned()
}

#[cfg(test)]
mod tests {
    use super::believe;
    use crate::probe::ClusterStatus;

    fn view(leader: Option<&str>, timeline: u64, _member: &str) -> ClusterStatus {
        ClusterStatus {
            cluster: "postgres".into(),
            technology: crate::inventory::Technology::Patroni,
            members: vec![],
            leader: leader.map(str::to_string),
            epoch_name: "timeline",
            epoch: Some(timeline),
            quorum: None,
            warnings: vec![],
            routes: Default::default(),
            groups: Vec::new(),
            peers: false,
        }
    }

    #[test]
    fn the_highest_epoch_wins_then_the_view_most_members_share_then_a_leader() {
        // A partition of the leader: it still names itself at timeline 4; the two others
        // already name the new leader, not yet promoted (same timeline). Whatever answers
        // first, the shared view wins.
        let isolated = view(Some("db-master-01"), 4, "db-master-01");
        let a = view(Some("db-slave-01"), 4, "db-slave-01");
        let b = view(Some("db-slave-01"), 4, "db-slave-02");
        for order in [
            vec![isolated.clone(), a.clone(), b.clone()],
            vec![a.clone(), isolated.clone(), b.clone()],
        ] {
            assert_eq!(
                believe(order).unwrap().leader.as_deref(),
                Some("db-slave-01")
            );
        }
        // A promotion moves the timeline: one member with it beats two stale ones.
        let promoted = view(Some("db-slave-01"), 5, "db-slave-01");
        let stale = view(Some("db-master-01"), 4, "db-slave-02");
        let got = believe(vec![stale.clone(), stale, promoted]).unwrap();
        assert_eq!(got.epoch, Some(5));
        // Two members see no leader at timeline 4, the cut-off one still names itself: the
        // majority is believed. Alone, a view with a leader beats one without.
        let none = view(None, 4, "db-slave-02");
        let got = believe(vec![isolated.clone(), none.clone(), none.clone()]).unwrap();
        assert_eq!(got.leader, None);
        let got = believe(vec![none, isolated]).unwrap();
        assert_eq!(got.leader.as_deref(), Some("db-master-01"));
        assert!(believe(vec![]).is_none());
    }
}
