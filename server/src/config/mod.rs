//! Server settings, with defaults that need nothing. Each one can be set by a `LIVEDASH_*`
//! environment variable or in a TOML config file under the same name without the prefix
//! (`LIVEDASH_HISTORY_LEN` ↔ `history_len = 1000`); the environment wins over the file. Every
//! setting is declared once, in [`settings`].

mod file;
mod read;
mod settings;

pub use file::file_settings;
pub use settings::{Config, SETTINGS, Setting};
use std::{collections::HashMap, path::Path};

/// The config file read when `LIVEDASH_CONFIG` does not name one and it exists.
pub const DEFAULT_FILE: &str = "livedash.toml";
/// Where `/metrics` is served unless configured otherwise: loopback only, the port
/// OpenTelemetry's Prometheus exporter uses.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{name}={value:?}: {expected}")]
    Invalid { name: String, value: String, expected: &'static str },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
}

impl Config {
    /// Where audit entries wait on disk: `LIVEDASH_AUDIT_SPILL_DIR`, or a directory named after the
    /// database (beside a SQLite file; for PostgreSQL, in the temporary directory, named by a hash
    /// of its URL).
    pub fn audit_spill_dir(&self) -> std::path::PathBuf {
        if let Some(dir) = &self.audit_spill_dir {
            return dir.into();
        }
        if self.database.starts_with("postgres://") || self.database.starts_with("postgresql://") {
            // FNV-1a: stable across runs and builds, unlike the standard hasher.
            let hash = self
                .database
                .bytes()
                .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
            return std::env::temp_dir().join(format!("livedash-audit-spill-{hash:016x}"));
        }
        let file = self
            .database
            .strip_prefix("sqlite://")
            .or_else(|| self.database.strip_prefix("sqlite:"))
            .unwrap_or(&self.database);
        std::path::PathBuf::from(format!("{file}.audit-spill"))
    }

    /// The environment over the config file (`LIVEDASH_CONFIG`, or `livedash.toml` if present) over
    /// the defaults.
    pub fn load() -> Result<Self, ConfigError> {
        let file = match std::env::var("LIVEDASH_CONFIG") {
            Ok(path) => file::read(Path::new(&path))?,
            Err(_) if Path::new(DEFAULT_FILE).exists() => file::read(Path::new(DEFAULT_FILE))?,
            Err(_) => HashMap::new(),
        };
        Self::from_lookup(|name| std::env::var(name).ok().or_else(|| file.get(name).cloned()))
    }

    /// Every variable name a setting is read from.
    pub fn names() -> impl Iterator<Item = &'static str> {
        SETTINGS.iter().map(|setting| setting.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_defaults() {
        assert_eq!(from(&[]), Ok(Config::default()));
    }

    #[test]
    fn values_override_defaults() {
        let c = from(&[
            ("LIVEDASH_DEMO", "on"),
            ("LIVEDASH_IDLE_TIMEOUT_SECS", " 90 "),
            ("LIVEDASH_ALLOWED_ORIGINS", "https://a.test, https://b.test,"),
        ])
        .unwrap();
        assert!(c.demo);
        assert_eq!(c.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.allowed_origins, vec!["https://a.test".to_owned(), "https://b.test".to_owned()]);
    }

    #[test]
    fn a_config_file_sets_the_same_settings_and_the_environment_wins() {
        let file = file_settings(
            "history_len = 50\ndemo = false\nallowed_origins = [\"https://a.test\", \"https://b.test\"]\n\
             database = \"/var/lib/livedash/db.sqlite\"\n",
        )
        .unwrap();
        let env: HashMap<String, String> = [("LIVEDASH_HISTORY_LEN".to_owned(), "70".to_owned())].into();
        let c = Config::from_lookup(|k| env.get(k).or_else(|| file.get(k)).cloned()).unwrap();
        assert_eq!(c.history_len, 70, "environment over file");
        assert!(!c.demo);
        assert_eq!(c.allowed_origins, vec!["https://a.test".to_owned(), "https://b.test".to_owned()]);
        assert_eq!(c.database, "/var/lib/livedash/db.sqlite");
    }

    #[test]
    fn a_config_file_with_a_typo_or_bad_toml_is_an_error() {
        assert_eq!(file_settings("histroy_len = 5"), Err("unknown setting \"histroy_len\"".to_owned()));
        assert!(file_settings("history_len = ").is_err());
        assert!(file_settings("allowed_origins = [1, 2]").is_err());
        let bad = |value: &str| {
            Config::from_lookup(|name| (name == "LIVEDASH_ALLOWED_ORIGINS").then(|| value.to_owned())).is_err()
        };
        assert!(bad("dash.example.com"), "a scheme is needed");
        assert!(bad("https://dash.example.com/app"), "an origin has no path");
        assert!(!bad("https://Dash.example.com/, http://127.0.0.1:8080"));
    }

    #[test]
    fn every_setting_has_a_name_of_its_own() {
        let names: Vec<&str> = Config::names().collect();
        assert!(names.iter().all(|n| n.starts_with("LIVEDASH_")));
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    /// The README's rows for `LIVEDASH_*` variables: name, default, meaning.
    fn readme_rows() -> Vec<(String, String, String)> {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        readme
            .lines()
            .filter_map(|line| line.strip_prefix("| `LIVEDASH_"))
            .filter_map(|rest| {
                let (name, rest) = rest.split_once("` | ")?;
                let (default, meaning) = rest.split_once(" | ")?;
                Some((format!("LIVEDASH_{name}"), default.to_owned(), meaning.strip_suffix(" |")?.to_owned()))
            })
            .collect()
    }

    #[test]
    fn the_readme_table_is_the_settings_the_server_reads() {
        let expected: Vec<(String, String, String)> =
            SETTINGS.iter().map(|s| (s.name.to_owned(), s.default.to_owned(), s.meaning.to_owned())).collect();
        let rows = readme_rows();
        if rows != expected {
            let table: String =
                SETTINGS.iter().map(|s| format!("| `{}` | {} | {} |\n", s.name, s.default, s.meaning)).collect();
            panic!(
                "README.md's settings table differs from config/settings.rs; its LIVEDASH_ rows should read:\n{table}"
            );
        }
    }

    #[test]
    fn every_default_the_readme_shows_as_a_value_reads_back_as_that_default() {
        let mut checked = 0;
        for setting in SETTINGS {
            let Some(value) = setting.default.strip_prefix('`').and_then(|v| v.strip_suffix('`')) else { continue };
            if value.contains('`') {
                continue; // words with code in them, not one value
            }
            let read = Config::from_lookup(|name| (name == setting.name).then(|| value.to_owned()));
            assert_eq!(read, Ok(Config::default()), "{} shown as {}", setting.name, setting.default);
            checked += 1;
        }
        assert!(checked > 40, "only {checked} defaults are shown as values");
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let err = from(&[("LIVEDASH_HISTORY_LEN", "lots")]).unwrap_err();
        assert_eq!(err.to_string(), "LIVEDASH_HISTORY_LEN=\"lots\": a whole number above 0");
        assert!(from(&[("LIVEDASH_OUTBOX_CAPACITY", "0")]).is_err());
        assert_eq!(from(&[("LIVEDASH_WRITE_COALESCE_MS", "0")]).unwrap().write_coalesce, Duration::ZERO);
        assert_eq!(from(&[]).unwrap().write_coalesce, Duration::from_millis(20));
        assert!(from(&[("LIVEDASH_WRITE_COALESCE_MS", "1001")]).is_err());
        assert!(from(&[("LIVEDASH_DEMO", "maybe")]).is_err());
    }
}
