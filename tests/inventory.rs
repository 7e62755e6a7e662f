//! servers.tsv: every validation rule with a file that breaks it, the real-format quirks, and
//! the grouping of the example fleet, cluster by cluster.

use keybuzz_console::inventory::{Fleet, Inventory, InventoryError, RuleSet, Technology, parse};
use std::path::Path;

const HEADER: &str = "ENV\tIP_PUBLIQUE\tHOSTNAME\tIP_PRIVEE\tFQDN\tUSER_SSH\tPOOL\tROLE\tSUBROLE\tDOCKER_STACK\tCORE\tNOTES";

/// A valid row for host `name` at 10.0.0.`n`.
fn row(name: &str, n: u8) -> String {
    format!(
        "prod\t203.0.113.{n}\t{name}\t10.0.0.{n}\t{name}.example.net\troot\tapp-pool\tapp\tweb\tapp-docker\tyes\tapp host"
    )
}

fn file(rows: &[String]) -> String {
    let mut s = String::from(HEADER);
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

fn errors(text: &str) -> InventoryError {
    match parse(Path::new("servers.tsv"), text.as_bytes()) {
        Ok(inv) => panic!("expected errors, got {} hosts", inv.hosts.len()),
        Err(e) => e,
    }
}

/// Asserts exactly one problem, at `line`, whose message contains `needle`; returns it.
fn one_error(text: &str, line: usize, needle: &str) -> keybuzz_console::inventory::Problem {
    let e = errors(text);
    assert_eq!(e.problems.len(), 1, "problems: {e}");
    let p = e.problems[0].clone();
    assert_eq!(p.line, line, "{p}");
    assert!(p.message.contains(needle), "{p} should contain {needle:?}");
    assert!(p.to_string().starts_with("servers.tsv:"), "{p}");
    p
}

#[test]
fn missing_required_column_is_named_with_the_header_line() {
    for required in ["HOSTNAME", "IP_PRIVEE", "ROLE"] {
        let header = HEADER.replace(required, "SOMETHING_ELSE");
        let text = format!("{header}\n{}\n", row("web-01", 1));
        let e = errors(&text);
        let p = e
            .problems
            .iter()
            .find(|p| p.message == format!("no {required} column"))
            .unwrap_or_else(|| panic!("no problem for {required}: {e}"));
        assert_eq!(p.line, 1);
        assert!(p.hint.as_deref().unwrap_or("").contains("HOSTNAME"), "{p}");
    }
}

#[test]
fn data_in_place_of_the_header_is_explained() {
    let text = file(&[]).replace(HEADER, &row("web-01", 1));
    let e = errors(&text);
    assert!(e.problems.iter().any(|p| {
        p.hint
            .as_deref()
            .unwrap_or("")
            .contains("first row must be the header")
    }));
}

#[test]
fn wrong_number_of_fields() {
    let short = row("web-02", 2).replacen("\tweb-02.example.net", "", 1);
    let long = format!("{}\textra", row("web-03", 3));
    let e = errors(&file(&[row("web-01", 1), short, long]));
    assert_eq!(e.problems.len(), 2, "{e}");
    assert_eq!(e.problems[0].line, 3);
    assert!(
        e.problems[0]
            .message
            .contains("11 fields but the header has 12")
    );
    assert_eq!(e.problems[1].line, 4);
    assert!(e.problems[1].message.contains("13 fields"));
}

#[test]
fn duplicate_hostname() {
    let p = one_error(
        &file(&[row("web-01", 1), row("web-01", 2)]),
        3,
        "already used on line 2",
    );
    assert_eq!(p.column, 18, "column of the HOSTNAME field");
}

#[test]
fn duplicate_private_ip_within_one_env_only() {
    let dup = row("web-02", 2).replace("10.0.0.2", "10.0.0.1");
    one_error(
        &file(&[row("web-01", 1), dup.clone()]),
        3,
        "10.0.0.1 is already used on line 2",
    );
    // The same private address in another ENV is another network: fine.
    let other_env = dup.replacen("prod", "staging", 1);
    parse(
        Path::new("s.tsv"),
        file(&[row("web-01", 1), other_env]).as_bytes(),
    )
    .expect("same IP in another ENV is valid");
}

#[test]
fn addresses_must_be_ip() {
    let bad_private = row("web-01", 1).replace("10.0.0.1\t", "10.0.0.300\t");
    let p = one_error(
        &file(&[bad_private]),
        2,
        "IP_PRIVEE \"10.0.0.300\" is not an IP address",
    );
    assert_eq!(p.column, 25);
    let bad_public = row("web-01", 1).replace("203.0.113.1", "not-an-ip");
    one_error(&file(&[bad_public]), 2, "IP_PUBLIQUE \"not-an-ip\"");
    // Empty or "-" public addresses mean "none".
    let none = row("web-01", 1).replace("203.0.113.1", "-");
    let inv = parse(Path::new("s.tsv"), file(&[none]).as_bytes()).unwrap();
    assert_eq!(inv.hosts[0].ip_public, None);
    let v6 = row("web-01", 1).replace("10.0.0.1\t", "fd00::1\t");
    parse(Path::new("s.tsv"), file(&[v6]).as_bytes()).expect("IPv6 is an address");
}

#[test]
fn host_names_cannot_carry_shell_metacharacters() {
    for bad in [
        "db;rm -rf",
        "$(id)",
        "db`x`",
        "db_01",
        "-db",
        "db..x",
        "a|b",
        "db&",
        "é",
    ] {
        let text = file(&[row("x", 1).replace("\tx\t", &format!("\t{bad}\t"))]);
        one_error(&text, 2, "is not a valid host name");
    }
    let fqdn = row("web-01", 1).replace("web-01.example.net", "web 01.example.net");
    one_error(&file(&[fqdn]), 2, "FQDN");
    let user = row("web-01", 1).replace("\troot\t", "\troot;id\t");
    one_error(
        &file(&[user]),
        2,
        "USER_SSH \"root;id\" is not a valid user name",
    );
}

#[test]
fn empty_required_fields() {
    let no_role = row("web-01", 1).replace("\tapp\t", "\t\t");
    one_error(&file(&[no_role]), 2, "ROLE is empty");
    let no_ip = row("web-01", 1).replace("\t10.0.0.1\t", "\t\t");
    one_error(&file(&[no_ip]), 2, "IP_PRIVEE is empty");
    let no_name = row("web-01", 1).replace("\tweb-01\t", "\t \t");
    one_error(&file(&[no_name]), 2, "HOSTNAME is empty");
}

#[test]
fn header_problems() {
    let e = errors("");
    assert!(e.problems[0].message.contains("no header row"));
    let dup = format!("{HEADER}\tNOTES\n{}\tx\n", row("web-01", 1));
    one_error(&dup, 1, "column NOTES appears twice");
}

#[test]
fn invalid_utf8_is_reported_not_fatal() {
    let mut bytes = file(&[row("web-01", 1), row("web-02", 2)]).into_bytes();
    let pos = bytes.windows(8).position(|w| w == b"app host").unwrap();
    bytes[pos] = 0xff;
    let e = parse(Path::new("servers.tsv"), &bytes).unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
    assert_eq!(e.problems[0].line, 2);
    assert!(e.problems[0].message.contains("UTF-8"));
}

#[test]
fn all_errors_are_reported_in_file_order() {
    let text = file(&[
        row("web-01", 1),
        row("web-02", 2).replace("10.0.0.2\t", "10.0.0.999\t"),
        row("web-03", 3).replace("\tweb-03\t", "\tweb;03\t"),
        row("web-01", 4),
        row("web-05", 5).replace("\tapp\t", "\t\t"),
        row("web-06", 6).replacen("\tapp host", "", 1),
    ]);
    let e = errors(&text);
    let lines: Vec<usize> = e.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7], "{e}");
    assert!(e.to_string().ends_with("5 errors in servers.tsv"));
}

#[test]
fn real_format_quirks_load() {
    // About 50 hosts as the team's files really are: BOM, CRLF, comments, extra columns
    // appended after NOTES, notes with accents, quotes and parentheses, several ENVs,
    // padded values, and blank lines at the end.
    let mut text = String::from("\u{feff}# KeyBuzz inventory\r\n");
    text.push_str(&format!("{HEADER}\tDATACENTER\tOWNER\r\n"));
    for i in 1..=46u8 {
        let notes = format!("nœud n°{i} \"app\" (équipe plateforme)");
        text.push_str(&format!(
            "prod\t203.0.113.{i}\tapp-{i:02}\t10.0.0.{i}\tapp-{i:02}.example.net\troot\tapp-pool\tapp\tweb\tapp-docker\tyes\t{notes}\tfsn1\tteam-{i}\r\n"
        ));
    }
    for i in 1..=4u8 {
        // staging reuses prod's private addresses, on its own network
        text.push_str(&format!(
            "staging\t198.51.100.{i}\tstg-{i:02} \t10.0.0.{i}\t\t\tstg-pool\tapp\tweb\t\tno\t\tfsn1\t\r\n"
        ));
    }
    text.push_str("\r\n\r\n\t\t\r\n");
    let inv = parse(Path::new("servers.tsv"), text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inv.hosts.len(), 50);
    assert_eq!(inv.columns.len(), 14);
    let h = &inv.hosts[0];
    assert_eq!(h.hostname, "app-01");
    assert_eq!(h.line, 3);
    assert_eq!(h.notes, "nœud n°1 \"app\" (équipe plateforme)");
    assert_eq!(h.extra.get("DATACENTER").map(String::as_str), Some("fsn1"));
    assert_eq!(h.extra.get("OWNER").map(String::as_str), Some("team-1"));
    let stg = inv.hosts.iter().find(|h| h.env == "staging").unwrap();
    assert_eq!(stg.hostname, "stg-01", "values are trimmed");
    assert_eq!(stg.user, "root", "empty USER_SSH means root");
    assert_eq!(stg.fqdn, None);
    assert_eq!(inv.envs(), vec!["prod", "staging"]);
    assert_eq!(inv.default_env(), "prod");
    let fleet = Fleet::new(&inv, Some("staging"), &RuleSet::builtin()).unwrap();
    assert_eq!(fleet.hosts.len(), 4);
    let err = Fleet::new(&inv, Some("dev"), &RuleSet::builtin()).unwrap_err();
    assert!(err.contains("prod, staging"), "{err}");
}

fn example_fleet() -> Fleet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers.example.tsv");
    let inv = Inventory::load(&path).unwrap_or_else(|e| panic!("{e}"));
    Fleet::new(&inv, None, &RuleSet::builtin()).unwrap()
}

#[test]
fn example_fleet_groups_cluster_by_cluster() {
    let fleet = example_fleet();
    assert_eq!(fleet.env, "prod");
    assert_eq!(fleet.hosts.len(), 29);
    let expect: &[(&str, Technology, &[&str])] = &[
        (
            "postgres",
            Technology::Patroni,
            &["db-master-01", "db-slave-01", "db-slave-02"],
        ),
        (
            "redis",
            Technology::Redis,
            &["redis-01", "redis-02", "redis-03"],
        ),
        (
            "rabbitmq",
            Technology::Rabbitmq,
            &["queue-01", "queue-02", "queue-03"],
        ),
        (
            "mariadb",
            Technology::Galera,
            &["maria-01", "maria-02", "maria-03"],
        ),
        (
            "proxysql",
            Technology::Proxysql,
            &["proxysql-01", "proxysql-02"],
        ),
        (
            "haproxy",
            Technology::Haproxy,
            &["haproxy-01", "haproxy-02"],
        ),
        (
            "minio",
            Technology::Minio,
            &["minio-01", "minio-02", "minio-03"],
        ),
        (
            "k3s",
            Technology::K3s,
            &[
                "k8s-master-01",
                "k8s-master-02",
                "k8s-master-03",
                "k8s-worker-01",
                "k8s-worker-02",
                "k8s-worker-03",
                "k8s-worker-04",
                "k8s-worker-05",
            ],
        ),
        (
            "postgres-temporal",
            Technology::Postgres,
            &["temporal-db-01"],
        ),
    ];
    assert_eq!(fleet.clusters.len(), expect.len());
    for (cluster, (name, tech, hosts)) in fleet.clusters.iter().zip(expect) {
        assert_eq!(cluster.name, *name);
        assert_eq!(cluster.technology, *tech, "{name}");
        assert_eq!(cluster.hosts, *hosts, "{name}");
    }
    assert_eq!(
        fleet.cluster("k3s").unwrap().pools,
        ["k3s-masters", "k3s-workers"]
    );
    let plain: Vec<_> = fleet.plain_hosts().map(|h| h.hostname.as_str()).collect();
    assert_eq!(plain, ["install-01"]);
}

#[test]
fn one_technology_in_two_pools_gets_pool_suffixes() {
    let mut rows = Vec::new();
    for (i, pool) in [(1u8, "redis-pool"), (2, "redis-pool"), (3, "cache-pool")] {
        rows.push(
            row(&format!("redis-{i:02}"), i)
                .replace("app-pool", pool)
                .replace("\tapp\t", "\tredis\t"),
        );
    }
    let inv = parse(Path::new("s.tsv"), file(&rows).as_bytes()).unwrap();
    let fleet = Fleet::new(&inv, None, &RuleSet::builtin()).unwrap();
    let names: Vec<_> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["redis-redis-pool", "redis-cache-pool"]);
}

#[test]
fn kbz_toml_rules_override_the_builtin_table() {
    let dir = tempfile::tempdir().unwrap();
    let inv_path = dir.path().join("servers.tsv");
    let rows = vec![
        row("cache-01", 1).replace("\tapp\tweb\t", "\tcache\tkeydb\t"),
        row("db-01", 2).replace("\tapp\tweb\t", "\tdb\tpostgres\t"),
    ];
    std::fs::write(&inv_path, file(&rows)).unwrap();
    // Without kbz.toml: cache-01 is a plain host, db-01 a standalone PostgreSQL.
    let inv = Inventory::load(&inv_path).unwrap();
    let fleet = Fleet::new(&inv, None, &RuleSet::for_inventory(&inv_path).unwrap()).unwrap();
    assert_eq!(fleet.clusters.len(), 1);
    assert_eq!(fleet.clusters[0].technology, Technology::Postgres);
    std::fs::write(
        dir.path().join("kbz.toml"),
        "[[cluster]]\ntechnology = \"redis\"\nname = \"cache\"\nwhen = { ROLE = \"cache\", SUBROLE = \"keydb\" }\n\n\
         [[cluster]]\ntechnology = \"patroni\"\nname = \"pg\"\nwhen = { subrole = \"postgres\" }\n",
    )
    .unwrap();
    let fleet = Fleet::new(&inv, None, &RuleSet::for_inventory(&inv_path).unwrap()).unwrap();
    let got: Vec<_> = fleet
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.technology))
        .collect();
    assert_eq!(
        got,
        [("cache", Technology::Redis), ("pg", Technology::Patroni)]
    );

    std::fs::write(
        dir.path().join("kbz.toml"),
        "[[cluster]]\ntechnology = \"oracle\"\nname = \"x\"\nwhen = {}\n",
    )
    .unwrap();
    let e = RuleSet::for_inventory(&inv_path).unwrap_err();
    let p = &e.problems[0];
    assert!(p.file.ends_with("kbz.toml"));
    assert_eq!(p.line, 2, "{p}");
    assert!(
        p.to_string().contains("patroni"),
        "lists valid technologies: {p}"
    );
}
