//! ProxySQL's admin tables as its admin port prints them (`mysql --batch`: a line of column
//! names, then a tab between fields, NULL as `NULL`), read by column name: the columns vary
//! between versions (2.0 has no `pxc_maint_mode`) and between a `SELECT *` and a chosen few.

use std::collections::BTreeMap;

/// One row: column name (lowercase) -> value; NULL and absent columns read as None.
#[derive(Debug, Clone, Default)]
pub struct Row(BTreeMap<String, String>);

impl Row {
    pub fn get(&self, column: &str) -> Option<&str> {
        self.0
            .get(&column.to_ascii_lowercase())
            .map(String::as_str)
            .filter(|v| *v != "NULL")
    }

    fn num(&self, column: &str) -> Option<u64> {
        self.get(column)?.trim().parse().ok()
    }

    fn yes(&self, column: &str) -> Option<bool> {
        match self.get(column)? {
            "YES" | "1" => Some(true),
            "NO" | "0" => Some(false),
            _ => None,
        }
    }
}

/// A table's rows; a reply that is no table (a server error) is Err with its text.
pub fn rows(text: &str) -> Result<Vec<Row>, String> {
    if text.starts_with("ERROR ") {
        return Err(text.lines().next().unwrap_or(text).to_string());
    }
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let Some(header) = lines.next() else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = header
        .split('\t')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    Ok(lines
        .map(|l| {
            Row(names
                .iter()
                .cloned()
                .zip(l.split('\t').map(|v| v.trim().to_string()))
                .collect())
        })
        .collect())
}

/// A backend server in one hostgroup (`runtime_mysql_servers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub hostgroup: u64,
    pub hostname: String,
    pub port: u64,
    /// ONLINE, SHUNNED, OFFLINE_SOFT, OFFLINE_HARD.
    pub status: String,
    pub weight: u64,
}

impl Server {
    pub fn online(&self) -> bool {
        self.status == "ONLINE"
    }

    pub fn shunned(&self) -> bool {
        self.status.starts_with("SHUNNED")
    }
}

pub fn servers(rows: &[Row]) -> Vec<Server> {
    rows.iter()
        .filter_map(|r| {
            Some(Server {
                hostgroup: r.num("hostgroup_id").or_else(|| r.num("hostgroup"))?,
                hostname: r.get("hostname").or_else(|| r.get("srv_host"))?.to_string(),
                port: r.num("port").or_else(|| r.num("srv_port")).unwrap_or(3306),
                status: r.get("status").unwrap_or("?").to_string(),
                weight: r.num("weight").unwrap_or(0),
            })
        })
        .collect()
}

/// One `mysql_galera_hostgroups` row: where ProxySQL puts each Galera member by its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaleraHostgroups {
    pub writer: u64,
    pub backup_writer: u64,
    pub reader: u64,
    pub offline: u64,
    pub active: bool,
    pub max_writers: u64,
    pub writer_is_also_reader: u64,
}

pub fn galera_hostgroups(rows: &[Row]) -> Vec<GaleraHostgroups> {
    rows.iter()
        .filter_map(|r| {
            Some(GaleraHostgroups {
                writer: r.num("writer_hostgroup")?,
                backup_writer: r.num("backup_writer_hostgroup")?,
                reader: r.num("reader_hostgroup")?,
                offline: r.num("offline_hostgroup")?,
                active: r.num("active") != Some(0),
                max_writers: r.num("max_writers").unwrap_or(1),
                writer_is_also_reader: r.num("writer_is_also_reader").unwrap_or(0),
            })
        })
        .collect()
}

/// One check of ProxySQL's monitor (`monitor.mysql_server_galera_log`, or the connect and
/// ping logs, which have only their `connect_error` / `ping_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub hostname: String,
    pub port: u64,
    pub time_start_us: u64,
    pub primary_partition: Option<bool>,
    /// 4 is Synced.
    pub wsrep_local_state: Option<u64>,
    pub desync: Option<bool>,
    pub error: Option<String>,
}

impl Check {
    /// It saw a member that takes no write: outside the Primary component, or not Synced.
    pub fn not_serving(&self) -> Option<String> {
        match (self.primary_partition, self.wsrep_local_state) {
            (Some(false), _) => Some("outside the Primary component".into()),
            (_, Some(s)) if s != 4 => Some(format!("in wsrep state {s} ({})", state_name(s))),
            _ => None,
        }
    }
}

/// wsrep_local_state's numbers, as Galera documents them.
fn state_name(s: u64) -> &'static str {
    match s {
        1 => "Joining",
        2 => "Donor/Desynced",
        3 => "Joined",
        4 => "Synced",
        _ => "unknown",
    }
}

/// The newest check of each server, in the order the servers first appear.
pub fn latest_checks(rows: &[Row]) -> Vec<Check> {
    let mut out: Vec<Check> = Vec::new();
    for r in rows {
        let (Some(hostname), Some(time)) = (r.get("hostname"), r.num("time_start_us")) else {
            continue;
        };
        let check = Check {
            hostname: hostname.to_string(),
            port: r.num("port").unwrap_or(3306),
            time_start_us: time,
            primary_partition: r.yes("primary_partition"),
            wsrep_local_state: r.num("wsrep_local_state"),
            desync: r.yes("wsrep_desync"),
            error: ["error", "connect_error", "ping_error"]
                .iter()
                .find_map(|c| r.get(c))
                .filter(|e| !e.is_empty())
                .map(str::to_string),
        };
        match out
            .iter_mut()
            .find(|c| c.hostname == check.hostname && c.port == check.port)
        {
            Some(c) if c.time_start_us < check.time_start_us => *c = check,
            Some(_) => {}
            None => out.push(check),
        }
    }
    out
}

/// One `stats_mysql_connection_pool` row: the live state of a server in a hostgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEntry {
    pub hostgroup: u64,
    pub host: String,
    pub port: u64,
    pub status: String,
    pub conn_used: Option<u64>,
    pub conn_err: Option<u64>,
    pub latency_us: Option<u64>,
}

pub fn pool(rows: &[Row]) -> Vec<PoolEntry> {
    rows.iter()
        .filter_map(|r| {
            Some(PoolEntry {
                hostgroup: r.num("hostgroup")?,
                host: r.get("srv_host")?.to_string(),
                port: r.num("srv_port").unwrap_or(3306),
                status: r.get("status").unwrap_or("?").to_string(),
                conn_used: r.num("connused"),
                conn_err: r.num("connerr"),
                latency_us: r.num("latency_us"),
            })
        })
        .collect()
}

/// A capture as the `mysql` client prints it in a terminal (a table boxed in `+---+`, or
/// `\G`'s one `name: value` a line), in `--batch` form: fixtures are kept as published.
#[cfg(test)]
pub fn unbox(capture: &str) -> String {
    if capture.contains(". row ***") {
        let mut names = Vec::new();
        let mut rows: Vec<Vec<String>> = Vec::new();
        for l in capture.lines().filter(|l| !l.starts_with('#')) {
            if l.contains(". row ***") {
                rows.push(Vec::new());
            } else if let (first, Some(row), Some((k, v))) =
                (rows.len() == 1, rows.last_mut(), l.split_once(':'))
            {
                if first {
                    names.push(k.trim().to_string());
                }
                row.push(v.trim().to_string());
            }
        }
        let mut out = vec![names.join("\t")];
        out.extend(rows.iter().map(|r| r.join("\t")));
        return out.join("\n");
    }
    capture
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
