//! Where and as whom to connect for an inventory host: its address and USER_SSH, refined by
//! `~/.ssh/config` (Host patterns, HostName, Port, User, IdentityFile, ProxyJump).

use crate::inventory::Host;
use ssh2_config::{ParseRule, SshConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything the engine needs to know besides the hosts.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// known_hosts files read, in order.
    pub known_hosts: Vec<PathBuf>,
    /// Where `--accept-new` records new keys.
    pub known_hosts_write: PathBuf,
    /// Keys tried after the agent and the ssh_config IdentityFile ones (the lab's key).
    pub identities: Vec<PathBuf>,
    pub use_agent: bool,
    /// Accept and record the key of a host known_hosts has never seen (never a changed one).
    pub accept_new: bool,
    pub ssh_config: Option<PathBuf>,
    /// TCP connect + SSH handshake + authentication.
    pub connect_timeout: Duration,
    /// Handshakes in flight at once, overall (sshd drops unauthenticated connections beyond
    /// its MaxStartups, and each handshake costs the server ~140 ms of CPU).
    pub max_handshakes: usize,
    /// Channels per connection, below sshd's default MaxSessions of 10.
    pub channels_per_host: usize,
    pub keepalive: Duration,
}

impl SshOptions {
    /// What OpenSSH would use for this user: ~/.ssh/config, known_hosts, default keys, agent.
    pub fn user_defaults() -> SshOptions {
        let ssh_dir = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"))
            .join(".ssh");
        let identities = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|n| ssh_dir.join(n))
            .filter(|p| p.is_file())
            .collect();
        SshOptions {
            known_hosts: vec![
                ssh_dir.join("known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts"),
            ],
            known_hosts_write: ssh_dir.join("known_hosts"),
            identities,
            use_agent: std::env::var_os("SSH_AUTH_SOCK").is_some(),
            accept_new: false,
            ssh_config: Some(ssh_dir.join("config")).filter(|p| p.is_file()),
            connect_timeout: Duration::from_secs(10),
            max_handshakes: 32,
            channels_per_host: 8,
            keepalive: Duration::from_secs(15),
        }
    }

    /// The lab's key and known_hosts first, the user's as well (a bastion may be theirs).
    pub fn with_lab(mut self, key: &Path, known_hosts: &Path) -> SshOptions {
        self.identities.insert(0, key.to_path_buf());
        self.known_hosts.insert(0, known_hosts.to_path_buf());
        self.known_hosts_write = known_hosts.to_path_buf();
        self
    }
}

/// One SSH destination, possibly behind a chain of jump hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name people use (inventory HOSTNAME, or the jump host as written).
    pub alias: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Key files to try, in order (agent keys come first, separately).
    pub identities: Vec<PathBuf>,
    /// The hop this target is reached through.
    pub jump: Option<Box<Target>>,
}

impl Target {
    /// Names a known_hosts entry may use for this target.
    pub fn key_names(&self) -> Vec<&str> {
        if self.alias == self.address {
            vec![self.alias.as_str()]
        } else {
            vec![self.alias.as_str(), self.address.as_str()]
        }
    }

    /// A short identity for pooling and messages: `user@alias:port via ...`.
    pub fn id(&self) -> String {
        let base = format!("{}@{}:{}", self.user, self.alias, self.port);
        match &self.jump {
            Some(j) => format!("{base} via {}", j.id()),
            None => base,
        }
    }
}

/// Parsed `~/.ssh/config`, if any.
pub struct ConfigFile(Option<SshConfig>);

impl ConfigFile {
    pub fn load(path: Option<&Path>) -> Result<ConfigFile, String> {
        let Some(path) = path else {
            return Ok(ConfigFile(None));
        };
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
        SshConfig::default()
            .parse(&mut std::io::BufReader::new(file), rules)
            .map(|c| ConfigFile(Some(c)))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The target for an inventory host. The inventory's USER_SSH wins over `User` (it is the
    /// team's explicit choice per host); the inventory's address is used unless `HostName` is
    /// set. The connect address is IP_PUBLIQUE when present, else IP_PRIVEE.
    pub fn target(&self, host: &Host, opts: &SshOptions) -> Target {
        let address = host.ip_public.unwrap_or(host.ip_private).to_string();
        let mut t = self.resolve(&host.hostname, &address, Some(&host.user), opts, 0);
        t.alias = host.hostname.clone();
        t
    }

    fn resolve(
        &self,
        alias: &str,
        default_address: &str,
        user: Option<&str>,
        opts: &SshOptions,
        depth: usize,
    ) -> Target {
        let params = self.0.as_ref().map(|c| c.query(alias));
        let p = params.as_ref();
        let address = p
            .and_then(|p| p.host_name.clone())
            .map(|h| expand_tokens(&h, alias))
            .unwrap_or_else(|| default_address.to_string());
        let mut identities: Vec<PathBuf> =
            p.and_then(|p| p.identity_file.clone()).unwrap_or_default();
        for id in &opts.identities {
            if !identities.contains(id) {
                identities.push(id.clone());
            }
        }
        let user = user
            .map(String::from)
            .or_else(|| p.and_then(|p| p.user.clone()))
            .unwrap_or_else(|| "root".into());
        // A chain `a,b` reaches the target through b, which is reached through a. Depth is
        // bounded so that a config whose jump hosts jump through each other cannot loop.
        let hops: Vec<String> = p
            .and_then(|p| p.proxy_jump.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|h| !h.eq_ignore_ascii_case("none"))
            .collect();
        let mut jump: Option<Box<Target>> = None;
        if depth < 4 {
            for hop in hops {
                let (hop_user, hop_host, hop_port) = parse_hop(&hop);
                let mut t =
                    self.resolve(&hop_host, &hop_host, hop_user.as_deref(), opts, depth + 1);
                if let Some(port) = hop_port {
                    t.port = port;
                }
                t.jump = jump.take();
                jump = Some(Box::new(t));
            }
        }
        Target {
            alias: alias.to_string(),
            address,
            port: p.and_then(|p| p.port).unwrap_or(22),
            user,
            identities,
            jump,
        }
    }
}

/// `user@host:port` (user and port optional), as ProxyJump writes hops.
fn parse_hop(hop: &str) -> (Option<String>, String, Option<u16>) {
    let (user, rest) = match hop.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, hop),
    };
    match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (user, h.to_string(), p.parse().ok()),
        _ => (user, rest.to_string(), None),
    }
}

/// `%h` is the host as given, `%%` a percent sign (the tokens HostName accepts).
fn expand_tokens(s: &str, host: &str) -> String {
    s.replace("%%", "\u{0}")
        .replace("%h", host)
        .replace('\u{0}', "%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::parse;

    fn host(name: &str, user: &str) -> Host {
        let tsv = format!("HOSTNAME\tIP_PRIVEE\tROLE\tUSER_SSH\n{name}\t10.0.0.5\tapp\t{user}\n");
        parse(Path::new("t.tsv"), tsv.as_bytes())
            .unwrap()
            .hosts
            .remove(0)
    }

    fn opts() -> SshOptions {
        SshOptions {
            identities: vec![PathBuf::from("/lab/key")],
            ..SshOptions::user_defaults()
        }
    }

    #[test]
    fn config_refines_inventory_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            "Host db-*\n  HostName %h.internal\n  Port 2200\n  User alice\n  IdentityFile /keys/db\n  ProxyJump ops@bastion:2222,jump2\n\n\
             Host bastion\n  HostName 192.0.2.7\n  IdentityFile /keys/bastion\n\n\
             Host *\n  IdentityFile /keys/default\n  ServerAliveCountMax 3\n",
        )
        .unwrap();
        let c = ConfigFile::load(Some(&cfg)).unwrap();
        let t = c.target(&host("db-01", "deploy"), &opts());
        assert_eq!(t.alias, "db-01");
        assert_eq!(t.address, "db-01.internal");
        assert_eq!(t.port, 2200);
        assert_eq!(t.user, "deploy", "USER_SSH wins over User");
        assert_eq!(
            t.identities,
            [
                PathBuf::from("/keys/db"),
                PathBuf::from("/keys/default"),
                PathBuf::from("/lab/key")
            ]
        );
        let j2 = t.jump.as_deref().unwrap();
        assert_eq!(j2.alias, "jump2");
        let j1 = j2.jump.as_deref().unwrap();
        assert_eq!(
            (
                j1.alias.as_str(),
                j1.address.as_str(),
                j1.port,
                j1.user.as_str()
            ),
            ("bastion", "192.0.2.7", 2222, "ops")
        );
        assert!(j1.jump.is_none());
        assert_eq!(
            t.id(),
            "deploy@db-01:2200 via root@jump2:22 via ops@bastion:2222"
        );

        let plain = c.target(&host("web-01", "root"), &opts());
        assert_eq!(plain.address, "10.0.0.5");
        assert_eq!(plain.port, 22);
        assert!(plain.jump.is_none());
        assert_eq!(plain.key_names(), ["web-01", "10.0.0.5"]);
    }

    #[test]
    fn hops_and_tokens() {
        assert_eq!(
            parse_hop("a@b:22"),
            (Some("a".into()), "b".into(), Some(22))
        );
        assert_eq!(parse_hop("b"), (None, "b".into(), None));
        assert_eq!(expand_tokens("%h.x%%", "db"), "db.x%");
    }
}
