//! The `kbz` binary as a user runs it: exit codes, messages and JSON.

use std::path::Path;
use std::process::{Command, Output};

fn kbz(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbz"))
        .args(args)
        .current_dir(dir)
        .env_remove("KBZ_INVENTORY")
        // An operator's shell may have it set: user errors must still be free of backtraces.
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run kbz")
}

fn example() -> String {
    format!("{}/servers.example.tsv", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_prints_a_summary_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = kbz(&["inventory", "check", &example()], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("ok, 29 hosts"), "{stdout}");
    assert!(stdout.contains("9 clusters"), "{stdout}");
}

#[test]
fn check_lists_five_mistakes_with_their_lines_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example()).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2] = lines[2].replace("10.0.0.121", "10.0.0.321"); // line 3: bad IP
    lines[4] = lines[4].replace("redis-01", "redis_01"); // line 5: bad host name
    lines[6] = lines[6].replace("redis-03", "redis-02"); // line 7: duplicate host name
    lines[8] = lines[8].replace("10.0.0.127", "10.0.0.126"); // line 9: duplicate private IP
    lines[10] = lines[10].replacen("\tdb\t", "\t\t", 1); // line 11: empty ROLE
    let bad = dir.path().join("servers.tsv");
    std::fs::write(&bad, lines.join("\r\n") + "\r\n\r\n").unwrap();
    let out = kbz(&["inventory", "check"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reported: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("servers.tsv:"))
        .collect();
    assert_eq!(reported.len(), 5, "{stderr}");
    for (l, needle) in reported.iter().zip([
        "servers.tsv:3:",
        "servers.tsv:5:",
        "servers.tsv:7:",
        "servers.tsv:9:",
        "servers.tsv:11:",
    ]) {
        assert!(l.starts_with(needle), "{l} should start with {needle}");
    }
    assert!(stderr.contains("5 errors in servers.tsv"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn show_json_has_hosts_and_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let out = kbz(
        &["-i", &example(), "inventory", "show", "--json"],
        dir.path(),
    );
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 29);
    let h = &hosts[0];
    for key in [
        "hostname",
        "ip_private",
        "ip_public",
        "env",
        "pool",
        "role",
        "subrole",
    ] {
        assert!(h.get(key).is_some(), "missing {key}");
    }
    assert_eq!(h["hostname"], "db-master-01");
    assert_eq!(h["ip_private"], "10.0.0.120");
    assert_eq!(h["cluster"], "postgres");
    let clusters = v["clusters"].as_array().unwrap();
    assert_eq!(clusters[1]["name"], "redis");
    assert_eq!(clusters[1]["technology"], "redis");
    assert_eq!(
        clusters[1]["hosts"],
        serde_json::json!(["redis-01", "redis-02", "redis-03"])
    );
}

#[test]
fn show_reads_kbz_inventory_and_lists_other_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kbz"))
        .args(["inventory", "show"])
        .env("KBZ_INVENTORY", example())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("k3s  K3s  8 hosts"), "{stdout}");
    assert!(stdout.contains("other hosts  1 host"), "{stdout}");
}

#[test]
fn missing_inventory_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = kbz(&["inventory", "show"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--inventory was not given"), "{stderr}");
    assert!(stderr.contains("$KBZ_INVENTORY is unset"), "{stderr}");
    assert!(stderr.contains("no servers.tsv in"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    let out = kbz(
        &["inventory", "check", "/nonexistent/servers.tsv"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/servers.tsv: cannot read"));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        kbz(&["inventory", "frobnicate"], dir.path()).status.code(),
        Some(2)
    );
    assert_eq!(kbz(&["--no-such-flag"], dir.path()).status.code(), Some(2));
}

#[test]
fn info_shows_xdg_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kbz"))
        .arg("info")
        .env("XDG_CONFIG_HOME", "/x/config")
        .env("XDG_STATE_HOME", "relative/ignored")
        .env("HOME", "/home/op")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("KBZ_INVENTORY")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("config     /x/config/kbz"), "{stdout}");
    assert!(
        stdout.contains("state      /home/op/.local/state/kbz"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cache      /home/op/.cache/kbz"),
        "{stdout}"
    );
    assert!(stdout.contains("inventory  none"), "{stdout}");
}

/// Changing hosts is refused with --readonly before anything is planned or contacted; the
/// plan of a dry run needs no host and prints the scripts with their environment, secrets
/// redacted, and changes nothing.
#[test]
fn readonly_refuses_install_and_cleanup_and_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inv = example();
    for args in [
        vec!["--readonly", "-i", &inv, "cleanup", "--all", "--yes"],
        vec![
            "--readonly",
            "-i",
            &inv,
            "install",
            "--module",
            "4",
            "--yes",
        ],
    ] {
        let out = kbz(&args, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("refused: kbz runs --readonly"), "{stderr}");
    }
    let state = dir.path().join("state");
    let out = Command::new(env!("CARGO_BIN_EXE_kbz"))
        .args([
            "--readonly",
            "-i",
            &inv,
            "install",
            "--module",
            "4",
            "--dry-run",
        ])
        .env("XDG_STATE_HOME", &state)
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("## redis-01 (root@"), "{stdout}");
    assert!(
        stdout.contains("export KBZ_INITIAL_PRIMARY=redis-01"),
        "{stdout}"
    );
    assert!(stdout.contains("echo \"::step sentinel\""), "{stdout}");
    assert!(stdout.contains("dry run: nothing was changed"), "{stdout}");
    assert!(!state.join("kbz/runs").exists(), "no run recorded");
    assert!(!state.join("kbz/secrets").exists(), "no secret generated");
}
