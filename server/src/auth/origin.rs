//! The Origin rule for live connections.
//!
//! Browsers send cookies with cross-site WebSocket requests, so a cookie alone would let any page
//! the user visits open a socket as them (cross-site WebSocket hijacking). Browsers always send
//! `Origin` on a WebSocket request and scripts cannot forge it, so the upgrade is allowed only from an
//! origin on the configured list, or, when none is configured, from this server's own host.
//!
//! The HTTP transports (SSE, polling) apply the same list to any `Origin` they are sent, but cannot
//! require one: a browser leaves it out of a same-origin `GET` (an `EventSource` or a `fetch` from our
//! own page). There the Fetch Metadata header `Sec-Fetch-Site`, which scripts cannot set either,
//! tells a cross-site request apart.

/// Whether a request with this `Origin` and `Host` may upgrade.
pub fn allowed(origin: Option<&str>, host: Option<&str>, allowed_origins: &[String]) -> bool {
    let Some(origin) = origin.map(|o| o.trim_end_matches('/').to_ascii_lowercase()) else {
        return false;
    };
    if !allowed_origins.is_empty() {
        return allowed_origins.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(&origin));
    }
    let Some(host) = host.map(str::to_ascii_lowercase) else {
        return false;
    };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// Whether a live HTTP request (SSE, polling) with these headers comes from an allowed page.
pub fn http_allowed(
    origin: Option<&str>,
    fetch_site: Option<&str>,
    host: Option<&str>,
    allowed_origins: &[String],
) -> bool {
    match origin {
        Some(_) => allowed(origin, host, allowed_origins),
        None => !fetch_site.is_some_and(|site| site.eq_ignore_ascii_case("cross-site")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_transports_check_an_origin_when_there_is_one_and_refuse_cross_site_requests() {
        let host = Some("127.0.0.1:3000");
        assert!(http_allowed(None, None, host, &[]), "same-origin GET from our page, or a tool");
        assert!(http_allowed(None, Some("same-origin"), host, &[]));
        assert!(!http_allowed(None, Some("cross-site"), host, &[]));
        assert!(http_allowed(Some("http://127.0.0.1:3000"), Some("same-origin"), host, &[]));
        assert!(!http_allowed(Some("http://evil.test"), None, host, &[]));
    }

    #[test]
    fn same_host_is_allowed_when_no_list_is_configured() {
        assert!(allowed(Some("http://127.0.0.1:3000"), Some("127.0.0.1:3000"), &[]));
        assert!(allowed(Some("https://Dash.Example.com"), Some("dash.example.com"), &[]));
        assert!(!allowed(Some("http://evil.test"), Some("127.0.0.1:3000"), &[]));
        assert!(!allowed(Some("http://127.0.0.1:3001"), Some("127.0.0.1:3000"), &[]), "port counts");
        assert!(!allowed(None, Some("127.0.0.1:3000"), &[]), "no Origin, no socket");
        assert!(!allowed(Some("null"), Some("127.0.0.1:3000"), &[]));
    }

    #[test]
    fn a_configured_list_is_exact() {
        let list = vec!["https://dash.example.com".to_owned()];
        assert!(allowed(Some("https://dash.example.com"), Some("internal:3000"), &list));
        assert!(!allowed(Some("https://dash.example.com.evil.test"), Some("internal:3000"), &list));
        assert!(!allowed(Some("http://internal:3000"), Some("internal:3000"), &list), "the list replaces same-host");
    }
}
