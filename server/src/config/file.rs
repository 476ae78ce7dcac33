//! The config file: TOML whose keys are the settings' names without `LIVEDASH_`, in lower case.

use super::{Config, ConfigError};
use std::{collections::HashMap, path::Path};

pub(super) fn read(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File { path: path.display().to_string(), message: e.to_string() })?;
    file_settings(&text).map_err(|message| ConfigError::File { path: path.display().to_string(), message })
}

/// A config file's settings as the variables they stand for: `history_len = 1000` becomes
/// `LIVEDASH_HISTORY_LEN=1000`, a list becomes comma-separated. Unknown keys are errors, so a typo
/// does not pass silently.
pub fn file_settings(text: &str) -> Result<HashMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let known: Vec<&str> = Config::names().collect();
    let mut settings = HashMap::new();
    for (key, value) in table {
        let name = format!("LIVEDASH_{}", key.to_ascii_uppercase());
        if !known.contains(&name.as_str()) {
            return Err(format!("unknown setting {key:?}"));
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => if b { "on" } else { "off" }.to_owned(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    other => Err(format!("{key}: expected a list of strings, found {other}")),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => return Err(format!("{key}: unsupported value {other}")),
        };
        settings.insert(name, value);
    }
    Ok(settings)
}
