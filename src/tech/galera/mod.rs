//! MariaDB Galera. Each member says only what it is itself: its wsrep status and a few
//! settings over the MySQL protocol, and when MariaDB does not answer, its saved state from
//! module 7's health endpoint (`reader`). `status` puts the members side by side (the
//! Primary component, its view, the writer), with `doctor`'s rules.

pub mod client;
mod doctor;
pub mod node;
pub mod reader;
pub mod status;
pub mod workload;

use super::Watching;
use crate::inventory::{Cluster, Fleet};
use crate::ssh::quote::quote;

/// The Primary component's configuration id: every view change (a member lost or back)
/// raises it.
pub const EPOCH: &str = "conf_id";

/// Where a healed member's journal says how it caught up.
pub const REJOIN_LOG: super::RejoinLog = super::RejoinLog {
    unit: "mariadb",
    grep: "Receiving IST: |requested state transfer|SST received|sst_rsync --role 'joiner'|State transfer required",
    read: rejoined_by,
};

/// IST (how many writesets, from which donor), SST, or no state transfer, from member
/// `host`'s MariaDB journal lines (as MariaDB 10.11 with Galera 4 logs them; every member
/// logs every member's requests, so the donor is the one chosen for `host`'s).
pub fn rejoined_by(log: &str, host: &str) -> String {
    let asked = format!("({host}) requested state transfer");
    let donor = log
        .lines()
        .filter(|l| l.contains(&asked))
        .filter_map(|l| l.split("Selected ").nth(1))
        .next_back()
        .and_then(|d| Some(d.split_once('(')?.1.split_once(')')?.0.to_string()));
    let from = donor.map(|d| format!(" from {d}")).unwrap_or_default();
    if let Some(n) = log
        .lines()
        .filter_map(|l| l.split("Receiving IST: ").nth(1))
        .next_back()
        .and_then(|r| r.split_whitespace().next())
    {
        format!("IST of {n} writesets{from}")
    } else if log.contains("SST received") || log.contains("--role 'joiner'") {
        format!("SST (a full copy){from}")
    } else {
        "no state transfer (it had missed nothing)".into()
    }
}

pub const WATCHING: Watching = Watching {
    reader: |pool, _, host| {
        Box::new(reader::Member::new(
            pool,
            pool.target(host),
            &host.ip_private.to_string(),
        ))
    },
    script,
    status: status::status,
    feed: None,
};

/// The CLI path: the same sections as `reader`, from the `mariadb` client on member `on`
/// (the password in its environment, never on a command line).
fn script(_: &Fleet, _: &Cluster, on: &str, quick: bool) -> String {
    let sql = |q: &str| {
        format!(
            "MYSQL_PWD=\"$(cat {} 2>/dev/null)\" mariadb -h {} -u {} --connect-timeout=1 --batch --skip-column-names -e {}",
            reader::PASSWORD_FILE,
            quote(on),
            reader::USER,
            quote(q)
        )
    };
    [
        sql(reader::STATUS),
        if quick {
            "true".into()
        } else {
            sql(reader::VARIABLES)
        },
        format!(
            "{} >/dev/null 2>&1 || curl -fsS --max-time 1 {}",
            sql("SELECT 1"),
            quote(&format!("http://{on}:{}/grastate", reader::HEALTH_PORT))
        ),
        if quick {
            "true".into()
        } else {
            format!(
                "curl -fsS --max-time 1 {}",
                quote(&format!("http://{on}:{}/state", reader::HEALTH_PORT))
            )
        },
    ]
    .join(crate::watch::SEPARATOR)
}

#[cfg(test)]
mod rejoin_tests {
    use super::rejoined_by;

    #[test]
    fn how_a_healed_member_caught_up() {
        // maria-01's journal in the lab after a kill and its restart (the lines
        // REJOIN_LOG's pattern keeps).
        let ist = "2026-12-02 15:27:35 2 [Note] WSREP: State transfer required:\n\
            2026-12-02 15:27:35 0 [Note] WSREP: Member 0.0 (maria-01) requested state transfer from '*any*'. Selected 2.0 (maria-03)(SYNCED) as donor.\n\
            2026-12-02 15:27:35 2 [Note] WSREP: Receiving IST: 39 writesets, seqnos 1494-1532\n";
        assert_eq!(
            rejoined_by(ist, "maria-01"),
            "IST of 39 writesets from maria-03"
        );
        // maria-02's journal as module 7 joined it: an SST, then maria-03's request, which
        // is not maria-02's donor.
        let sst = "2026-12-02 15:21:39 2 [Note] WSREP: State transfer required:\n\
            2026-12-02 15:21:39 0 [Note] WSREP: Running: 'wsrep_sst_rsync --role 'joiner' --address '10.203.0.171' --datadir '/var/lib/mysql/' --parent 1074 --progress 0 --mysqld-args --wsrep_start_position=00000000-0000-0000-0000-000000000000:-1'\n\
            2026-12-02 15:21:40 0 [Note] WSREP: Member 1.0 (maria-02) requested state transfer from '*any*'. Selected 0.0 (maria-01)(SYNCED) as donor.\n\
            2026-12-02 15:21:42 3 [Note] WSREP: SST received\n\
            2026-12-02 15:21:45 0 [Note] WSREP: Member 2.0 (maria-03) requested state transfer from '*any*'. Selected 0.0 (maria-01)(SYNCED) as donor.\n";
        assert_eq!(
            rejoined_by(sst, "maria-02"),
            "SST (a full copy) from maria-01"
        );
        assert_eq!(
            rejoined_by("", "maria-01"),
            "no state transfer (it had missed nothing)"
        );
    }
}
