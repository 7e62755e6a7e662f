//! One lab host: a systemd-nspawn container booting the base image through its own persistent
//! overlay, in its own cgroups, on its own veth. Everything here is idempotent, so that a host
//! left half-alive by a killed kbz or machine can always be started or cleaned again.

use super::net;
use super::profile::HostSpec;
use super::sys::{self, Cgroups};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What a host needs from its lab.
pub struct Ctx<'a> {
    pub image: &'a Path,
    pub hosts_dir: &'a Path,
    pub lab_pubkey: &'a Path,
    pub etc_hosts: &'a str,
    pub net: Ipv4Addr,
    pub cgroups: &'a Cgroups,
}

impl Ctx<'_> {
    pub fn dir(&self, name: &str) -> PathBuf {
        self.hosts_dir.join(name)
    }

    pub fn ip(&self, spec: &HostSpec) -> Ipv4Addr {
        let o = self.net.octets();
        Ipv4Addr::new(o[0], o[1], o[2], spec.octet)
    }
}

/// The host's own SSH host key (made once, kept across restarts), public half.
pub fn host_pubkey(ctx: &Ctx, name: &str) -> Result<String, String> {
    let key = ctx.dir(name).join("files/ssh_host_ed25519_key");
    if !key.is_file() {
        if let Some(parent) = key.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        sys::keygen(&key, &format!("root@{name}"))?;
    }
    let pubkey = std::fs::read_to_string(key.with_extension("pub"))
        .map_err(|e| format!("cannot read {name}'s host key: {e}"))?;
    // "ssh-ed25519 AAAA... comment" -> type and key only.
    Ok(pubkey
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

/// Boots the host in the background; returns the nspawn pid. [`net::attach`] must follow, to
/// plug the host into the bridge once nspawn has made its interface. The host is detached from the
/// caller's terminal and session, so it outlives `kbz lab up`.
pub fn start(ctx: &Ctx, spec: &HostSpec) -> Result<u32, String> {
    let name = spec.name.as_str();
    cleanup(ctx, spec);
    let dir = ctx.dir(name);
    let root = dir.join("root");
    for d in ["upper", "work", "root"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }
    let lower = ctx.image.to_string_lossy();
    let opts = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        dir.join("upper").display(),
        dir.join("work").display()
    );
    sys::run(
        "mount",
        &[
            "-t",
            "overlay",
            "overlay",
            "-o",
            &opts,
            &root.to_string_lossy(),
        ],
    )?;
    if let Err(e) = provision(ctx, spec, &root) {
        let _ = sys::run("umount", &[&root.to_string_lossy()]);
        return Err(e);
    }
    net::clear_veth(spec.octet);
    let (outside, inside) = net::veth_names(spec.octet);
    let procs = ctx.cgroups.create(name)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("console.log"))
        .map_err(|e| format!("cannot open {name}'s console log: {e}"))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    // A shell moves itself into the host's cgroups and then becomes nspawn, so nspawn and
    // everything it starts are in them from the first instruction (no race with a fork).
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 1; shift; done; shift; exec "$@""#)
        .arg("kbz-lab-host");
    cmd.args(&procs).arg("--");
    cmd.arg("systemd-nspawn")
        .arg("--quiet")
        .arg("-D")
        .arg(&root)
        .arg("-M")
        .arg(name)
        .arg(format!("--uuid={}", uuid(spec.octet)))
        .arg("--register=no")
        .arg("--keep-unit")
        .arg(format!("--network-veth-extra={outside}:{inside}"))
        .arg("--resolv-conf=off")
        .arg("--timezone=off")
        .arg("--link-journal=no")
        .arg("--console=read-only")
        .arg("-b");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start systemd-nspawn for {name}: {e}"))?;
    let pid = child.id();
    // Reap it when it ends while we are still running (a long-lived console); after we exit,
    // init does.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(pid)
}

/// Files that make the image this host: written into its own upper layer, like a server's
/// own disk, once (a restart keeps whatever the host has changed since).
fn provision(ctx: &Ctx, spec: &HostSpec, root: &Path) -> Result<(), String> {
    let name = &spec.name;
    let files = ctx.dir(name).join("files");
    host_pubkey(ctx, name)?;
    let upper = ctx.dir(name).join("upper");
    let once = |rel: &str, content: &[u8], mode: u32| -> Result<(), String> {
        // Already in the host's own layer: the host owns it now (module 2 rewrites
        // /etc/hosts, for one).
        if upper.join(rel).exists() {
            return Ok(());
        }
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&p, content).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let read =
        |p: PathBuf| std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    once("etc/hostname", format!("{name}\n").as_bytes(), 0o644)?;
    once("etc/hosts", ctx.etc_hosts.as_bytes(), 0o644)?;
    once(
        "etc/ssh/ssh_host_ed25519_key",
        &read(files.join("ssh_host_ed25519_key"))?,
        0o600,
    )?;
    once(
        "etc/ssh/ssh_host_ed25519_key.pub",
        &read(files.join("ssh_host_ed25519_key.pub"))?,
        0o644,
    )?;
    once(
        "root/.ssh/authorized_keys",
        &read(ctx.lab_pubkey.to_path_buf())?,
        0o600,
    )?;
    let (_, inside) = net::veth_names(spec.octet);
    let network = format!(
        "[Match]\nName={inside}\n\n[Network]\nAddress={}/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        ctx.ip(spec)
    );
    once(
        "etc/systemd/network/10-host0.network",
        network.as_bytes(),
        0o644,
    )
}

/// A stable, unique machine-id per host (the image's is empty on purpose).
fn uuid(octet: u8) -> String {
    format!("006b627a-0000-4000-8000-{:012x}", octet)
}

/// Is `pid` still this host's nspawn? Guards against acting on a recycled pid.
pub fn is_our_nspawn(pid: u32, name: &str) -> bool {
    sys::pid_alive(pid)
        && sys::cmdline(pid).is_some_and(|c| {
            c.contains("systemd-nspawn")
                && c.split(' ')
                    .collect::<Vec<_>>()
                    .windows(2)
                    .any(|w| w == ["-M", name])
        })
}

/// Clean poweroff: SIGTERM makes nspawn shut the container down; if that does not finish
/// in `grace`, every process of the host is killed. Then the host's mounts, cgroups and veth
/// are removed.
pub fn stop(ctx: &Ctx, spec: &HostSpec, pid: Option<u32>, grace: Duration) {
    let name = spec.name.as_str();
    if ctx.cgroups.is_frozen(name) {
        let _ = ctx.cgroups.set_frozen(name, false);
    }
    if let Some(pid) = pid.filter(|p| is_our_nspawn(*p, name)) {
        sys::signal(pid, libc::SIGTERM);
        sys::wait_until(grace, || {
            ctx.cgroups.pids(name).is_empty() && !sys::pid_alive(pid)
        });
    }
    cleanup(ctx, spec);
}

/// Power cut: every process of the host killed at once, no shutdown.
pub fn crash(ctx: &Ctx, spec: &HostSpec) -> Result<(), String> {
    ctx.cgroups.kill_all(&spec.name)?;
    cleanup(ctx, spec);
    Ok(())
}

/// Removes whatever a host left behind (processes in its cgroups, its mounts, its veth),
/// whether it stopped cleanly or not. Its persistent upper layer stays.
pub fn cleanup(ctx: &Ctx, spec: &HostSpec) {
    let name = spec.name.as_str();
    if !ctx.cgroups.pids(name).is_empty() {
        let _ = ctx.cgroups.kill_all(name);
    }
    for m in sys::mounts_under(&ctx.dir(name)) {
        let m = m.to_string_lossy();
        if !sys::run_quiet("umount", &[&m]) {
            sys::run_quiet("umount", &["-l", &m]);
        }
    }
    ctx.cgroups.remove(name);
    net::clear_veth(spec.octet);
}

/// Does the host answer on the SSH port with an SSH banner?
pub fn ssh_banner(ip: Ipv4Addr, timeout: Duration) -> bool {
    use std::io::Read;
    let addr = std::net::SocketAddr::from((ip, 22));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).is_ok() && &buf == b"SSH-2.0-"
}
