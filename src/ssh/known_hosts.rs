//! Host-key verification with OpenSSH's rules, on top of ssh-key's known_hosts parser (which
//! only parses: matching, hashed names, markers and certificates are ours). russh's own check
//! ignores `@revoked` and `@cert-authority`, wildcards and tab separators, so kbz does not use it.

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use russh::keys::ssh_key::{Algorithm, Certificate, HashAlg, PublicKey, public::KeyData};
use std::path::{Path, PathBuf};

/// What the known_hosts files say of the key a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A recorded key, or a host certificate signed by a trusted `@cert-authority`.
    Trusted,
    /// No entry for this host at all.
    Unknown { key: String },
    /// Entries exist for this host, none with this key: possibly a man in the middle.
    Changed { expected: Vec<String>, got: String },
    /// The key (or the CA that signed the certificate) is marked `@revoked`.
    Revoked { key: String, at: String },
    /// A certificate that no trusted CA signed for this host, or that is not valid now.
    BadCertificate { reason: String },
}

/// `ssh-ed25519 SHA256:...`, as OpenSSH prints keys.
pub fn describe(key: &KeyData) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

struct Line {
    file: PathBuf,
    number: usize,
    entry: Entry,
}

impl Line {
    fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.number)
    }
}

/// The entries of one or more known_hosts files, and the file new keys are added to.
pub struct KnownHosts {
    lines: Vec<Line>,
    write_to: PathBuf,
    /// Lines that could not be parsed (OpenSSH skips them too), for diagnostics.
    pub skipped: Vec<String>,
    /// Keys a person has checked and accepted for a host that had none recorded:
    /// (host names, key as `describe` writes it).
    approved: std::sync::Mutex<Vec<(Vec<String>, String)>>,
}

impl KnownHosts {
    /// Reads the files that exist (a missing file is an empty one); new keys go to `write_to`.
    pub fn load(files: &[PathBuf], write_to: PathBuf) -> KnownHosts {
        let mut lines = Vec::new();
        let mut skipped = Vec::new();
        for file in files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for (i, raw) in text.lines().enumerate() {
                let trimmed = raw.trim();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                // OpenSSH accepts any run of blanks between fields; ssh-key wants one space.
                let normalized = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
                match normalized.parse::<Entry>() {
                    Ok(entry) => lines.push(Line {
                        file: file.clone(),
                        number: i + 1,
                        entry,
                    }),
                    Err(e) => skipped.push(format!("{}:{}: {e}", file.display(), i + 1)),
                }
            }
        }
        KnownHosts {
            lines,
            write_to,
            skipped,
            approved: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Entries whose host patterns match one of `names` at `port`. As OpenSSH does, a
    /// non-standard port is looked up as `[name]:port` first, then as the bare name.
    fn matching<'a>(&'a self, names: &[&str], port: u16) -> Vec<&'a Line> {
        let lookup = |with_port: bool| -> Vec<&Line> {
            let keys: Vec<String> = names
                .iter()
                .map(|n| {
                    if with_port {
                        format!("[{n}]:{port}")
                    } else {
                        (*n).to_string()
                    }
                })
                .collect();
            self.lines
                .iter()
                .filter(|l| {
                    keys.iter()
                        .any(|k| host_matches(l.entry.host_patterns(), k))
                })
                .collect()
        };
        if port != 22 {
            let found = lookup(true);
            if !found.is_empty() {
                return found;
            }
        }
        lookup(false)
    }

    /// Judges the key or certificate a server presented as `names` (alias, address) at `port`.
    pub fn check(&self, names: &[&str], port: u16, presented: &PublicKeyOrCertificate) -> Verdict {
        let key = presented.public_key();
        let cert = presented.certificate();
        // Revoked keys are refused whatever host they are offered for.
        for l in self
            .lines
            .iter()
            .filter(|l| l.entry.marker() == Some(&Marker::Revoked))
        {
            let revoked = l.entry.public_key().key_data();
            if revoked == key.key_data() || cert.is_some_and(|c| c.signature_key() == revoked) {
                return Verdict::Revoked {
                    key: describe(revoked),
                    at: l.at(),
                };
            }
        }
        let found = self.matching(names, port);
        if let Some(cert) = cert {
            return check_certificate(cert, names, &found);
        }
        let plain: Vec<&&Line> = found
            .iter()
            .filter(|l| l.entry.marker().is_none())
            .collect();
        if plain
            .iter()
            .any(|l| l.entry.public_key().key_data() == key.key_data())
        {
            return Verdict::Trusted;
        }
        if plain.is_empty() {
            Verdict::Unknown {
                key: describe(key.key_data()),
            }
        } else {
            Verdict::Changed {
                expected: plain
                    .iter()
                    .map(|l| format!("{} ({})", describe(l.entry.public_key().key_data()), l.at()))
                    .collect(),
                got: describe(key.key_data()),
            }
        }
    }

    /// Host-key algorithms to offer, the ones already recorded for this host first: a server
    /// with several keys then shows the one we know instead of looking "changed".
    pub fn preferred_algorithms(&self, names: &[&str], port: u16) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = Vec::new();
        for l in self.matching(names, port) {
            if l.entry.marker().is_some() {
                continue;
            }
            for alg in expand(l.entry.public_key().algorithm()) {
                if !algs.contains(&alg) {
                    algs.push(alg);
                }
            }
        }
        for alg in [
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: russh::keys::ssh_key::EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: russh::keys::ssh_key::EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: russh::keys::ssh_key::EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ] {
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        algs
    }

    /// Records a newly accepted key (`--accept-new`), like `StrictHostKeyChecking=accept-new`.
    pub fn append(&self, names: &[&str], port: u16, key: &PublicKey) -> Result<PathBuf, String> {
        use std::io::Write;
        let hosts: Vec<String> = names
            .iter()
            .map(|n| {
                if port == 22 {
                    (*n).to_string()
                } else {
                    format!("[{n}]:{port}")
                }
            })
            .collect();
        let line = format!(
            "{} {} {}\n",
            hosts.join(","),
            key.algorithm().as_str(),
            russh::keys::PublicKeyBase64::public_key_base64(key)
        );
        if let Some(dir) = self.write_to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.write_to)
            .map_err(|e| format!("cannot open {}: {e}", self.write_to.display()))?;
        f.write_all(line.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", self.write_to.display()))?;
        Ok(self.write_to.clone())
    }

    /// Records that a person checked `key` (as `describe` writes it) for a host whose key was
    /// unknown; the next connection that presents exactly this key records it and goes on.
    pub fn approve(&self, names: &[&str], key: &str) {
        if let Ok(mut a) = self.approved.lock() {
            a.push((
                names.iter().map(|n| n.to_string()).collect(),
                key.to_string(),
            ));
        }
    }

    pub fn is_approved(&self, names: &[&str], key: &KeyData) -> bool {
        let described = describe(key);
        self.approved.lock().is_ok_and(|a| {
            a.iter()
                .any(|(n, k)| *k == described && names.iter().all(|x| n.iter().any(|y| y == x)))
        })
    }

    pub fn write_to(&self) -> &Path {
        &self.write_to
    }
}

/// RSA keys are recorded as `ssh-rsa` but offered with SHA-2 signatures.
fn expand(alg: Algorithm) -> Vec<Algorithm> {
    match alg {
        Algorithm::Rsa { .. } => vec![
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ],
        other => vec![other],
    }
}

fn check_certificate(cert: &Certificate, names: &[&str], found: &[&Line]) -> Verdict {
    let cas: Vec<_> = found
        .iter()
        .filter(|l| l.entry.marker() == Some(&Marker::CertAuthority))
        .map(|l| l.entry.public_key().fingerprint(HashAlg::Sha256))
        .collect();
    if cas.is_empty() {
        return Verdict::BadCertificate {
            reason: "no @cert-authority in known_hosts covers this host".into(),
        };
    }
    if let Err(e) = cert.validate(cas.iter()) {
        return Verdict::BadCertificate {
            reason: format!("certificate not signed by a trusted CA or not valid now: {e}"),
        };
    }
    if cert.cert_type() != CertType::Host {
        return Verdict::BadCertificate {
            reason: "a user certificate was presented as a host key".into(),
        };
    }
    if !cert
        .valid_principals()
        .iter()
        .any(|p| names.iter().any(|n| p.eq_ignore_ascii_case(n)))
    {
        return Verdict::BadCertificate {
            reason: format!(
                "certificate principals {:?} do not name {}",
                cert.valid_principals(),
                names.join(" or ")
            ),
        };
    }
    Verdict::Trusted
}

/// OpenSSH's host matching: hashed names compared by HMAC-SHA1; otherwise comma-separated
/// globs, case-insensitive, where a matching `!pattern` vetoes the line.
fn host_matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => Hmac::<sha1::Sha1>::new_from_slice(salt)
            .map(|mac| mac.chain_update(name.as_bytes()).verify_slice(hash).is_ok())
            .unwrap_or(false),
        HostPatterns::Patterns(list) => {
            let mut positive = false;
            for p in list {
                if let Some(neg) = p.strip_prefix('!') {
                    if crate::inventory::glob::matches(neg, name) {
                        return false;
                    }
                } else if crate::inventory::glob::matches(p, name) {
                    positive = true;
                }
            }
            positive
        }
    }
}
