//! Where kbz keeps its files (XDG base directories) and how it finds the inventory.
//! Runtime data never goes into the repository or the working directory.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `$XDG_CONFIG_HOME/kbz`: the user's config, themes and key bindings.
    pub config: PathBuf,
    /// `$XDG_STATE_HOME/kbz`: run logs, the fault ledger, the lab's state.
    pub state: PathBuf,
    /// `$XDG_CACHE_HOME/kbz`: the lab's base image.
    pub cache: PathBuf,
}

impl Paths {
    /// Paths from the environment, per the XDG base directory spec: a variable that is unset,
    /// empty or relative is ignored in favour of the default under `$HOME`.
    pub fn from_env() -> Result<Paths, String> {
        let var = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let home = var("HOME");
        let dir = |xdg: &str, default: &str| -> Result<PathBuf, String> {
            match (var(xdg), &home) {
                (Some(base), _) => Ok(base.join("kbz")),
                (None, Some(home)) => Ok(home.join(default).join("kbz")),
                (None, None) => Err(format!(
                    "neither ${xdg} nor $HOME is set to an absolute path"
                )),
            }
        };
        Ok(Paths {
            config: dir("XDG_CONFIG_HOME", ".config")?,
            state: dir("XDG_STATE_HOME", ".local/state")?,
            cache: dir("XDG_CACHE_HOME", ".cache")?,
        })
    }
}

/// How the inventory in use was found, for `kbz info` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventorySource {
    Flag,
    EnvVar,
    WorkingDir,
    Lab,
}

impl InventorySource {
    pub fn describe(&self) -> &'static str {
        match self {
            InventorySource::Flag => "from --inventory",
            InventorySource::EnvVar => "from $KBZ_INVENTORY",
            InventorySource::WorkingDir => "./servers.tsv in the working directory",
            InventorySource::Lab => "the running lab's inventory (--lab)",
        }
    }
}

/// Lookup order: `--inventory FILE`, `$KBZ_INVENTORY`, `./servers.tsv`. The error says
/// everywhere it looked.
pub fn locate_inventory(flag: Option<&Path>) -> Result<(PathBuf, InventorySource), String> {
    if let Some(p) = flag {
        return Ok((p.to_path_buf(), InventorySource::Flag));
    }
    let env = std::env::var_os("KBZ_INVENTORY").filter(|v| !v.is_empty());
    if let Some(p) = &env {
        return Ok((PathBuf::from(p), InventorySource::EnvVar));
    }
    let local = PathBuf::from("servers.tsv");
    if local.is_file() {
        return Ok((local, InventorySource::WorkingDir));
    }
    Err(format!(
        "no inventory found: --inventory was not given, $KBZ_INVENTORY is {}, and there is no \
         servers.tsv in {}\n  give one with `kbz -i FILE ...`, or try `kbz --lab ...` on a running lab",
        if env.is_some() { "set" } else { "unset" },
        std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| "the working directory".into())
    ))
}
