//! The module catalogue: one folder per module, with `module.toml` and its scripts
//! (`install.sh`, `cleanup.sh`, `verify.sh`), or an external command run on the orchestrator.
//! The built-in modules (`assets/modules/`) are compiled in; a directory given in config adds
//! or replaces modules without recompiling.

use crate::inventory::Technology;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Which hosts a module runs on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Targets {
    /// Every host of every cluster of these technologies.
    #[serde(default)]
    pub technologies: Vec<Technology>,
    /// Hosts whose ROLE is one of these (`orchestrator`, `app`...).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Every host of the ENV.
    #[serde(default)]
    pub all: bool,
}

/// A command run on the orchestrator host instead of scripts on the targets: a team's own
/// installer, an `ansible-playbook` run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct External {
    pub install: String,
    pub cleanup: Option<String>,
    pub verify: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The seed's numbering: 2 base, 3 PostgreSQL HA, 4 Redis HA, 5 RabbitMQ, 6 MinIO,
    /// 7 Galera, 8 load balancers, 9 K3s, 10 apps.
    pub number: u32,
    pub name: String,
    pub title: String,
    pub description: String,
    pub targets: Targets,
    /// Secrets the scripts get as `KBZ_SECRET_<NAME>`; generated once per ENV.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Facts from `[vars]` in the fleet's kbz.toml that the scripts need (`KBZ_VAR_<NAME>`).
    #[serde(default)]
    pub vars: Vec<String>,
    /// What `cleanup` wipes, in words, for the plan shown before it runs.
    #[serde(default)]
    pub wipes: String,
    pub external: Option<External>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Cleanup,
    Install,
    Verify,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Cleanup => "cleanup",
            Phase::Install => "install",
            Phase::Verify => "verify",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Module {
    pub manifest: Manifest,
    /// Where it came from: `built-in` or the folder.
    pub origin: String,
    install: Option<String>,
    cleanup: Option<String>,
    verify: Option<String>,
}

impl Module {
    pub fn number(&self) -> u32 {
        self.manifest.number
    }

    /// The script of a phase (`None`: the module has nothing to do in that phase).
    pub fn script(&self, phase: Phase) -> Option<&str> {
        match phase {
            Phase::Cleanup => self.cleanup.as_deref(),
            Phase::Install => self.install.as_deref(),
            Phase::Verify => self.verify.as_deref(),
        }
    }

    pub fn external(&self, phase: Phase) -> Option<&str> {
        let e = self.manifest.external.as_ref()?;
        match phase {
            Phase::Cleanup => e.cleanup.as_deref(),
            Phase::Install => Some(&e.install),
            Phase::Verify => e.verify.as_deref(),
        }
    }

    fn parse(origin: &str, manifest: &str, files: [Option<String>; 3]) -> Result<Module, String> {
        let manifest: Manifest =
            toml::from_str(manifest).map_err(|e| format!("{origin}/module.toml: {e}"))?;
        let [install, cleanup, verify] = files;
        if manifest.external.is_none() && install.is_none() {
            return Err(format!(
                "{origin}: module {} has neither install.sh nor [external]",
                manifest.number
            ));
        }
        Ok(Module {
            manifest,
            origin: origin.to_string(),
            install,
            cleanup,
            verify,
        })
    }

    fn from_dir(dir: &Path) -> Result<Module, String> {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let manifest =
            read("module.toml").ok_or_else(|| format!("{}: no module.toml", dir.display()))?;
        Module::parse(
            &dir.display().to_string(),
            &manifest,
            [read("install.sh"), read("cleanup.sh"), read("verify.sh")],
        )
    }
}

macro_rules! builtin {
    ($dir:literal) => {
        (
            $dir,
            include_str!(concat!("../../assets/modules/", $dir, "/module.toml")),
            include_str!(concat!("../../assets/modules/", $dir, "/install.sh")),
            include_str!(concat!("../../assets/modules/", $dir, "/cleanup.sh")),
            include_str!(concat!("../../assets/modules/", $dir, "/verify.sh")),
        )
    };
}

/// Only modules that work are listed; numbers never change as modules arrive.
const BUILTIN: &[(&str, &str, &str, &str, &str)] = &[
    builtin!("02-base"),
    builtin!("03-postgres"),
    builtin!("04-redis"),
    builtin!("05-rabbitmq"),
    builtin!("07-galera"),
    builtin!("08-lb"),
];

pub struct Catalogue {
    pub modules: Vec<Module>,
}

impl Catalogue {
    /// The built-in modules, then those of `extra` (a module there with a built-in number
    /// replaces it).
    pub fn load(extra: Option<&Path>) -> Result<Catalogue, String> {
        let mut modules = Vec::new();
        for (dir, manifest, install, cleanup, verify) in BUILTIN {
            modules.push(Module::parse(
                &format!("built-in {dir}"),
                manifest,
                [
                    Some(install.to_string()),
                    Some(cleanup.to_string()),
                    Some(verify.to_string()),
                ],
            )?);
        }
        if let Some(dir) = extra {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| format!("modules directory {}: {e}", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("module.toml").is_file())
                .collect();
            dirs.sort();
            for d in dirs {
                let m = Module::from_dir(&d)?;
                modules.retain(|x| x.number() != m.number());
                modules.push(m);
            }
        }
        modules.sort_by_key(Module::number);
        for pair in modules.windows(2) {
            if pair[0].number() == pair[1].number() {
                return Err(format!(
                    "two modules numbered {}: {} and {}",
                    pair[0].number(),
                    pair[0].origin,
                    pair[1].origin
                ));
            }
        }
        Ok(Catalogue { modules })
    }

    /// The catalogue with the user's modules from `modules_dir` in
    /// `CONFIG_DIR/config.toml`, if set.
    pub fn for_config(config_dir: &Path) -> Result<Catalogue, String> {
        let file = config_dir.join("config.toml");
        let dir = match std::fs::read_to_string(&file) {
            Ok(text) => {
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
                table
                    .get("modules_dir")
                    .and_then(|v| v.as_str())
                    .map(PathBuf::from)
            }
            Err(_) => None,
        };
        Catalogue::load(dir.as_deref())
    }

    pub fn get(&self, number: u32) -> Option<&Module> {
        self.modules.iter().find(|m| m.number() == number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_in_order() {
        let c = Catalogue::load(None).unwrap();
        let numbers: Vec<u32> = c.modules.iter().map(Module::number).collect();
        assert_eq!(numbers, [2, 3, 4, 5, 7, 8]);
        assert!(
            c.get(4)
                .unwrap()
                .script(Phase::Install)
                .unwrap()
                .contains("::step")
        );
    }

    #[test]
    fn user_modules_add_and_replace_and_mistakes_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("50-echo");
        std::fs::create_dir(&m).unwrap();
        std::fs::write(
            m.join("module.toml"),
            "number = 50\nname = \"echo\"\ntitle = \"t\"\ndescription = \"d\"\n\
             [targets]\nroles = [\"orchestrator\"]\n[external]\ninstall = \"echo hi\"\n",
        )
        .unwrap();
        let c = Catalogue::load(Some(dir.path())).unwrap();
        assert_eq!(c.get(50).unwrap().external(Phase::Install), Some("echo hi"));
        std::fs::write(m.join("module.toml"), "number = \"x\"\n").unwrap();
        let err = Catalogue::load(Some(dir.path())).err().unwrap();
        assert!(err.contains("50-echo/module.toml"), "{err}");
    }
}
