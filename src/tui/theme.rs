//! Themes are TOML files: the ones in the repository's `themes/` are built in, and
//! `$XDG_CONFIG_HOME/kbz/themes/NAME.toml` adds or replaces one. Chosen by `--theme`, `:theme`,
//! or per ENV in `config.toml`, so prod can look unmistakably different. NO_COLOR keeps the
//! layout and drops every colour (states stay readable: they are written, not only coloured).

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    ok: String,
    warn: String,
    bad: String,
    alert: String,
    muted: String,
    accent: String,
    text: String,
    background: String,
    env_fg: String,
    env_bg: String,
    match_fg: String,
    match_bg: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub ok: Color,
    pub warn: Color,
    pub bad: Color,
    /// Security problems (host keys, auth): they need a person, not a retry.
    pub alert: Color,
    pub muted: Color,
    pub accent: Color,
    pub text: Color,
    pub background: Color,
    pub env_fg: Color,
    pub env_bg: Color,
    pub match_fg: Color,
    pub match_bg: Color,
}

impl Theme {
    fn parse(text: &str) -> Result<Theme, String> {
        let f: ThemeFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let c = |field: &str, v: &str| -> Result<Color, String> {
            v.parse()
                .map_err(|_| format!("{field} = {v:?} is not a colour (a name, 0-255 or #rrggbb)"))
        };
        Ok(Theme {
            ok: c("ok", &f.ok)?,
            warn: c("warn", &f.warn)?,
            bad: c("bad", &f.bad)?,
            alert: c("alert", &f.alert)?,
            muted: c("muted", &f.muted)?,
            accent: c("accent", &f.accent)?,
            text: c("text", &f.text)?,
            background: c("background", &f.background)?,
            env_fg: c("env_fg", &f.env_fg)?,
            env_bg: c("env_bg", &f.env_bg)?,
            match_fg: c("match_fg", &f.match_fg)?,
            match_bg: c("match_bg", &f.match_bg)?,
            name: f.name,
        })
    }

    pub fn builtin() -> Theme {
        Theme::parse(BUILTIN[0].1).unwrap_or_else(|_| Theme::mono("default"))
    }

    /// Every colour off: NO_COLOR, or a terminal that has none.
    pub fn mono(name: &str) -> Theme {
        let r = Color::Reset;
        Theme {
            name: name.to_string(),
            ok: r,
            warn: r,
            bad: r,
            alert: r,
            muted: r,
            accent: r,
            text: r,
            background: r,
            env_fg: r,
            env_bg: r,
            match_fg: r,
            match_bg: r,
        }
    }

    pub fn is_mono(&self) -> bool {
        self.ok == Color::Reset && self.bad == Color::Reset
    }

    /// Search matches: reversed when there is no colour to mark them with.
    pub fn matched(&self) -> Style {
        if self.is_mono() {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED)
        } else {
            Style::new().fg(self.match_fg).bg(self.match_bg)
        }
    }

    pub fn env_badge(&self) -> Style {
        if self.is_mono() {
            return Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED);
        }
        Style::new()
            .fg(self.env_fg)
            .bg(self.env_bg)
            .add_modifier(Modifier::BOLD)
    }

    pub fn base(&self) -> Style {
        Style::new().fg(self.text).bg(self.background)
    }
}

/// The themes on offer: built in, then the user's directory (a file there replaces a built-in
/// theme of the same name).
pub struct Themes {
    dir: PathBuf,
    no_color: bool,
}

impl Themes {
    pub fn new(config_dir: &Path) -> Themes {
        Themes {
            dir: config_dir.join("themes"),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        }
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        if let Ok(dir) = std::fs::read_dir(&self.dir) {
            for e in dir.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml")
                    && let Some(stem) = p.file_stem()
                {
                    names.push(stem.to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// The named theme; an unknown name or a bad file says so, with the file and the choices.
    pub fn load(&self, name: &str) -> Result<Theme, String> {
        let user = self.dir.join(format!("{name}.toml"));
        let theme = match std::fs::read_to_string(&user) {
            Ok(text) => Theme::parse(&text).map_err(|e| format!("{}: {e}", user.display()))?,
            Err(_) => {
                let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                    format!("no theme {name:?} (themes: {})", self.names().join(", "))
                })?;
                Theme::parse(text).map_err(|e| format!("built-in theme {name}: {e}"))?
            }
        };
        Ok(if self.no_color {
            Theme::mono(&theme.name)
        } else {
            theme
        })
    }
}

/// `$XDG_CONFIG_HOME/kbz/config.toml`, the console's part:
/// ```toml
/// theme = "default"
/// [env_theme]
/// prod = "high-contrast"
/// ```
#[derive(Debug, Default, Deserialize)]
pub struct ConsoleConfig {
    pub theme: Option<String>,
    #[serde(default)]
    pub env_theme: BTreeMap<String, String>,
}

impl ConsoleConfig {
    pub fn load(config_dir: &Path) -> Result<ConsoleConfig, String> {
        let path = config_dir.join("config.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConsoleConfig::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// `--theme`, else the ENV's theme, else the configured one; prod defaults to
    /// high-contrast so that it never looks like a lab.
    pub fn theme_for(&self, flag: Option<&str>, env: &str) -> String {
        flag.map(str::to_string)
            .or_else(|| self.env_theme.get(env).cloned())
            .or_else(|| (env == "prod").then(|| "high-contrast".to_string()))
            .or_else(|| self.theme.clone())
            .unwrap_or_else(|| "default".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_themes_parse_and_user_files_win() {
        let dir = tempfile::tempdir().unwrap();
        let themes = Themes {
            dir: dir.path().join("themes"),
            no_color: false,
        };
        for name in ["default", "light", "high-contrast"] {
            assert_eq!(themes.load(name).unwrap().name, name);
        }
        assert_eq!(themes.load("high-contrast").unwrap().env_bg, Color::Red);
        let err = themes.load("solarized").unwrap_err();
        assert!(err.contains("default, high-contrast, light"), "{err}");
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        let mine = BUILTIN[0].1.replace("\"cyan\"", "\"#102030\"");
        std::fs::write(dir.path().join("themes/mine.toml"), mine).unwrap();
        assert_eq!(
            themes.load("mine").unwrap().accent,
            Color::Rgb(0x10, 0x20, 0x30)
        );
        std::fs::write(
            dir.path().join("themes/broken.toml"),
            BUILTIN[0].1.replace("\"red\"", "\"reddish\""),
        )
        .unwrap();
        let err = themes.load("broken").unwrap_err();
        assert!(
            err.contains("broken.toml: bad = \"reddish\" is not a colour"),
            "{err}"
        );
    }

    #[test]
    fn no_color_drops_every_colour() {
        let themes = Themes {
            dir: PathBuf::from("/nonexistent"),
            no_color: true,
        };
        let t = themes.load("high-contrast").unwrap();
        assert!(t.is_mono());
        assert_eq!(t.matched().bg, None);
    }

    #[test]
    fn theme_choice_order() {
        let cfg: ConsoleConfig =
            toml::from_str("theme = \"light\"\n[env_theme]\nstaging = \"default\"\n").unwrap();
        assert_eq!(cfg.theme_for(Some("x"), "prod"), "x");
        assert_eq!(cfg.theme_for(None, "staging"), "default");
        assert_eq!(cfg.theme_for(None, "prod"), "high-contrast");
        assert_eq!(cfg.theme_for(None, "dev"), "light");
        assert_eq!(ConsoleConfig::default().theme_for(None, "lab"), "default");
    }
}
