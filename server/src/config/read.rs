//! How a setting's text becomes its value: one function per kind of setting, each taking the
//! variable's name (for the error), its value when set, and the default.

use super::ConfigError;
use std::time::Duration;

type Read<T> = Result<T, ConfigError>;

fn invalid(name: &str, value: String, expected: &'static str) -> ConfigError {
    ConfigError::Invalid { name: name.to_owned(), value, expected }
}

/// A whole number above 0.
pub fn number(name: &str, value: Option<String>, default: u64) -> Read<u64> {
    value.map_or(Ok(default), |value| {
        value.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| invalid(name, value, "a whole number above 0"))
    })
}

/// A count or a size: a whole number above 0.
pub fn size(name: &str, value: Option<String>, default: usize) -> Read<usize> {
    number(name, value, default as u64).map(|n| n as usize)
}

/// Whole seconds above 0.
pub fn secs(name: &str, value: Option<String>, default: Duration) -> Read<Duration> {
    number(name, value, default.as_secs()).map(Duration::from_secs)
}

/// Whole milliseconds from 0 to 1000 (0 turns the wait off).
pub fn coalesce_ms(name: &str, value: Option<String>, default: Duration) -> Read<Duration> {
    value.map_or(Ok(default), |value| match value.parse::<u64>() {
        Ok(ms) if ms <= 1000 => Ok(Duration::from_millis(ms)),
        _ => Err(invalid(name, value, "a whole number of milliseconds from 0 to 1000")),
    })
}

/// `on` or `off` (also `1`/`0`, `true`/`false`, `yes`/`no`).
pub fn switch(name: &str, value: Option<String>, default: bool) -> Read<bool> {
    match value.as_deref() {
        None => Ok(default),
        Some("1" | "true" | "on" | "yes") => Ok(true),
        Some("0" | "false" | "off" | "no") => Ok(false),
        Some(_) => Err(invalid(name, value.unwrap_or_default(), "on or off")),
    }
}

/// Any text.
pub fn text(_name: &str, value: Option<String>, default: String) -> Read<String> {
    Ok(value.unwrap_or(default))
}

/// Any text, or nothing.
pub fn optional(_name: &str, value: Option<String>, default: Option<String>) -> Read<Option<String>> {
    Ok(value.or(default))
}

/// Comma-separated items; empty ones are skipped.
pub fn list(_name: &str, value: Option<String>, default: Vec<String>) -> Read<Vec<String>> {
    Ok(value.map_or(default, |v| split(&v)))
}

fn split(value: &str) -> Vec<String> {
    value.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

/// Comma-separated origins, each `http(s)://host[:port]` with nothing after (what browsers send as
/// `Origin`), lower-cased.
pub fn origins(name: &str, value: Option<String>, default: Vec<String>) -> Read<Vec<String>> {
    let Some(value) = value else { return Ok(default) };
    let origins = split(&value);
    for origin in &origins {
        let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        let host = rest.map(|r| r.trim_end_matches('/')).filter(|h| !h.is_empty() && !h.contains(['/', '?', '#', '@']));
        if host.is_none() {
            let expected = "origins of the form https://host or https://host:port, comma-separated";
            return Err(invalid(name, origin.clone(), expected));
        }
    }
    Ok(origins.into_iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect())
}

/// A cookie's `Domain`: lower case, without a leading dot.
pub fn cookie_domain(_name: &str, value: Option<String>, default: Option<String>) -> Read<Option<String>> {
    Ok(value.map(|d| d.trim_start_matches('.').to_ascii_lowercase()).or(default))
}

/// An address to listen on, or `main` for none of its own (`None`).
pub fn metrics_addr(_name: &str, value: Option<String>, default: Option<String>) -> Read<Option<String>> {
    Ok(match value {
        Some(main) if main.eq_ignore_ascii_case("main") => None,
        Some(addr) => Some(addr),
        None => default,
    })
}
