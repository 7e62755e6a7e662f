//! Secrets the modules need (Redis password, replication passwords): generated once per ENV,
//! kept 0600 in kbz's state dir (the scripts keep their own 0600 copy on the hosts), given to
//! scripts in their environment, and redacted from every log line and screen.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct Secrets {
    file: PathBuf,
    pub values: BTreeMap<String, String>,
}

impl Secrets {
    /// `$XDG_STATE_HOME/kbz/secrets/ENV.toml`.
    pub fn load(state: &Path, env: &str) -> Result<Secrets, String> {
        let file = state.join("secrets").join(format!("{env}.toml"));
        let values = match std::fs::read_to_string(&file) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        Ok(Secrets { file, values })
    }

    /// The named secrets, generating (and saving) those that do not exist yet.
    pub fn ensure(&mut self, names: &[String]) -> Result<(), String> {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !self.values.contains_key(*n))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for name in missing {
            self.values.insert(name.clone(), generate()?);
        }
        self.save()
    }

    fn save(&self) -> Result<(), String> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let text = toml::to_string(&self.values).map_err(|e| e.to_string())?;
        let tmp = self.file.with_extension("tmp");
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            f.write_all(text.as_bytes())
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
        }
        std::fs::rename(&tmp, &self.file).map_err(|e| format!("{}: {e}", self.file.display()))
    }

    pub fn redactor(&self) -> Redactor {
        Redactor {
            secrets: self
                .values
                .iter()
                .filter(|(_, v)| v.len() >= 8)
                .map(|(k, v)| (v.clone(), format!("<secret {k}>")))
                .collect(),
        }
    }
}

/// 32 hex characters from the kernel's random source: safe in config files and URLs.
fn generate() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Replaces every known secret value in a text by its name.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
}

impl Redactor {
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, name) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), name);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_kept_private_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Secrets::load(dir.path(), "lab").unwrap();
        s.ensure(&["redis_password".into()]).unwrap();
        let first = s.values["redis_password"].clone();
        assert_eq!(first.len(), 32);
        let mut again = Secrets::load(dir.path(), "lab").unwrap();
        again.ensure(&["redis_password".into()]).unwrap();
        assert_eq!(again.values["redis_password"], first, "generated once");
        let mode = std::fs::metadata(dir.path().join("secrets/lab.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let r = again.redactor();
        assert_eq!(
            r.redact(&format!("redis-cli -a {first} ping")),
            "redis-cli -a <secret redis_password> ping"
        );
    }
}
