//! The lab's base image: Debian made once with debootstrap from the mirror the machine's own
//! apt sources name, with the fleet's service packages preinstalled and disabled, cached
//! under a key of its recipe so a changed package list builds a new image.

use super::sys;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Bumped whenever `configure` changes what the image contains.
const RECIPE_VERSION: &str = "1";

/// Everything the hosts need: systemd and OpenSSH, the fleet's real services (installed but
/// disabled; the install modules enable them), and the tools the modules and faults use.
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "procps",
    "netbase",
    "iputils-ping",
    "curl",
    "python3",
    "nftables",
    "less",
    "ca-certificates",
    "sudo",
    "postgresql",
    "patroni",
    "etcd-server",
    "etcd-client",
    "redis-server",
    "redis-sentinel",
    "rabbitmq-server",
    "mariadb-server",
    "galera-4",
    "haproxy",
    "keepalived",
];

/// Units installed by the packages above that must not start at boot: the modules decide.
const SERVICES_OFF: &[&str] = &[
    "postgresql.service",
    "patroni.service",
    "etcd.service",
    "redis-server.service",
    "redis-sentinel.service",
    "rabbitmq-server.service",
    "epmd.service",
    "epmd.socket",
    "mariadb.service",
    "mariadb.socket",
    "haproxy.service",
    "keepalived.service",
    "cron.service",
    "e2scrub_reap.service",
    "remote-fs.target",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "logrotate.timer",
];

/// Units useless or harmful in a container (firstboot would prompt on an empty machine-id).
const MASKED: &[&str] = &[
    "systemd-firstboot.service",
    "systemd-networkd-wait-online.service",
    "apt-daily.service",
    "apt-daily-upgrade.service",
    "e2scrub_all.service",
    "e2scrub_reap.service",
    "fstrim.service",
    "systemd-pstore.service",
    "systemd-repart.service",
    "getty@tty1.service",
];

/// The Debian mirror and suite the machine itself uses (never written in the repository).
pub fn host_mirror() -> Result<(String, String), String> {
    let mut candidates = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "sources"))
        {
            if let Ok(text) = std::fs::read_to_string(f) {
                candidates.extend(deb822_sources(&text));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        candidates.extend(one_line_sources(&text));
    }
    candidates
        .into_iter()
        // The main archive, not -security or -updates.
        .find(|(uri, suite)| !suite.contains('-') && !uri.contains("security"))
        .ok_or_else(|| {
            "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources"
                .into()
        })
}

fn deb822_sources(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| -> Vec<String> {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.split_whitespace().map(String::from).collect())
                .unwrap_or_default()
        };
        if !field("Types:").iter().any(|t| t == "deb") {
            continue;
        }
        for uri in field("URIs:") {
            for suite in field("Suites:") {
                out.push((uri.clone(), suite));
            }
        }
    }
    out
}

fn one_line_sources(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().filter(|w| !w.starts_with('['));
            (words.next()? == "deb").then_some(())?;
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// The cache key: what the image is made of.
pub fn key(suite: &str) -> String {
    let mut h = Sha256::new();
    h.update(RECIPE_VERSION);
    h.update(suite);
    for p in PACKAGES {
        h.update(p);
        h.update(",");
    }
    let digest = h.finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The image's root directory, built first if the cache does not have it.
pub fn ensure(cache: &Path, progress: &dyn Fn(&str)) -> Result<PathBuf, String> {
    let (mirror, suite) = host_mirror()?;
    let dir = cache.join(format!("image-{}-{}", suite, key(&suite)));
    let rootfs = dir.join("rootfs");
    if dir.join("ready").is_file() {
        return Ok(rootfs);
    }
    let start = Instant::now();
    progress(&format!(
        "building the lab image ({} packages, Debian {suite}) into {}; this takes a few minutes once",
        PACKAGES.len(),
        dir.display()
    ));
    let tmp = cache.join(format!("image-{}-{}.partial", suite, key(&suite)));
    // A build interrupted earlier leaves a partial tree: start it again from scratch.
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .map_err(|e| format!("cannot remove {}: {e}", tmp.display()))?;
    }
    let debs = cache.join("debs");
    for d in [&tmp, &debs] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let tmp_root = tmp.join("rootfs");
    debootstrap(
        &tmp_root,
        &debs,
        &suite,
        &mirror,
        &tmp.join("build.log"),
        progress,
    )?;
    configure(&tmp_root)?;
    std::fs::write(
        tmp.join("ready"),
        format!("built in {:.0} s\n", start.elapsed().as_secs_f64()),
    )
    .map_err(|e| format!("cannot write the image marker: {e}"))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| format!("cannot move the image into place: {e}"))?;
    progress(&format!(
        "lab image built in {:.0} s",
        start.elapsed().as_secs_f64()
    ));
    Ok(rootfs)
}

fn debootstrap(
    root: &Path,
    debs: &Path,
    suite: &str,
    mirror: &str,
    log: &Path,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    let mut child = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--cache-dir={}", debs.display()))
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(suite)
        .arg(root)
        .arg(mirror)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run debootstrap: {e}"))?;
    let mut log_file = std::fs::File::create(log).ok();
    let mut phase = String::new();
    let mut count = 0usize;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(f) = log_file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            // debootstrap says "I: Retrieving foo", "I: Validating foo", ... per package:
            // group those lines into phases and report each phase with a running count.
            let word = line
                .strip_prefix("I: ")
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("");
            let this = match word {
                "Retrieving" | "Validating" => "downloading",
                "Extracting" => "extracting",
                "Unpacking" => "unpacking",
                "Configuring" => "configuring",
                _ => continue,
            };
            if this != phase {
                if count > 0 {
                    progress(&format!("  image: {phase} done ({count})"));
                }
                phase = this.to_string();
                count = 0;
            }
            count += 1;
            if count.is_multiple_of(100) {
                progress(&format!("  image: {phase} {count}..."));
            }
        }
    }
    if count > 0 {
        progress(&format!("  image: {phase} done ({count})"));
    }
    let status = child.wait().map_err(|e| format!("debootstrap: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "debootstrap failed ({status}); its log: {} and {}/debootstrap/debootstrap.log",
            log.display(),
            root.display()
        ))
    }
}

/// Turns the debootstrapped tree into a host image: no baked identity (host keys,
/// machine-id), services off, networkd on, a resolver that answers at once, sshd by key only.
fn configure(root: &Path) -> Result<(), String> {
    let r = root.to_string_lossy().to_string();
    let root_arg = format!("--root={r}");
    for unit in SERVICES_OFF {
        // Not every unit exists in every release: a missing one is nothing to disable.
        sys::run_quiet("systemctl", &[&root_arg, "disable", unit]);
    }
    for unit in MASKED {
        sys::run_quiet("systemctl", &[&root_arg, "mask", unit]);
    }
    sys::run(
        "systemctl",
        &[
            &root_arg,
            "enable",
            "systemd-networkd.service",
            "systemd-networkd.socket",
            "ssh.service",
        ],
    )?;
    let write = |rel: &str, text: &str| -> Result<(), String> {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    if let Ok(entries) = std::fs::read_dir(root.join("etc/ssh")) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("ssh_host_") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    write("etc/machine-id", "")?;
    let dbus_id = root.join("var/lib/dbus/machine-id");
    let _ = std::fs::remove_file(&dbus_id);
    std::os::unix::fs::symlink("/etc/machine-id", &dbus_id)
        .map_err(|e| format!("cannot link {}: {e}", dbus_id.display()))?;
    write("etc/hostname", "kbz-lab\n")?;
    // Nothing listens on 127.0.0.1:53, so a lookup that /etc/hosts cannot answer fails at
    // once instead of stalling for seconds.
    write(
        "etc/resolv.conf",
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )?;
    let nss = root.join("etc/nsswitch.conf");
    let text = std::fs::read_to_string(&nss).unwrap_or_default();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("hosts:") {
                "hosts:          files".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    write("etc/nsswitch.conf", &(text.join("\n") + "\n"))?;
    write(
        "etc/ssh/sshd_config.d/kbz.conf",
        "UseDNS no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\nHostKey /etc/ssh/ssh_host_ed25519_key\n",
    )?;
    // A rebooted server keeps its journal; cap it so a hundred hosts stay small.
    write(
        "etc/systemd/journald.conf.d/kbz.conf",
        "[Journal]\nSystemMaxUse=16M\n",
    )?;
    std::fs::create_dir_all(root.join("etc/systemd/network")).map_err(|e| e.to_string())?;
    let ssh_dir = root.join("root/.ssh");
    std::fs::create_dir_all(&ssh_dir).map_err(|e| e.to_string())?;
    std::fs::set_permissions(
        &ssh_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(|e| e.to_string())?;
    if let Ok(entries) = std::fs::read_dir(root.join("var/cache/apt/archives")) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_apt_source_formats() {
        let deb822 = "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            deb822_sources(deb822)[0],
            (
                "http://mirror.invalid/debian".to_string(),
                "bookworm".to_string()
            )
        );
        let legacy = "# comment\ndeb [arch=amd64] http://mirror.invalid/debian bookworm main\ndeb-src x y z\n";
        assert_eq!(
            one_line_sources(legacy),
            vec![(
                "http://mirror.invalid/debian".to_string(),
                "bookworm".to_string()
            )]
        );
    }

    #[test]
    fn key_follows_the_recipe() {
        assert_eq!(key("bookworm"), key("bookworm"));
        assert_ne!(key("bookworm"), key("trixie"));
        assert_eq!(key("bookworm").len(), 12);
    }
}
