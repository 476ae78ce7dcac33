//! The session cookie: its name, its attributes, and reading it back.
//!
//! httpOnly (no script reads it), SameSite=Strict (no cross-site request carries it), Secure over
//! TLS, and for `LIVEDASH_COOKIE_DOMAIN` and its subdomains when one is configured (the static
//! build on a sibling host). Over TLS without a domain it is named `__Host-livedash_session`: a
//! browser accepts a cookie of that name only from this very host, Secure, for `/`, so a sibling
//! subdomain cannot plant one (session fixation, signing the victim in as the attacker). A request
//! is read under the one name its own transport gives, never the other.

use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, SameSite};
use std::time::Duration;

pub const NAME: &str = "livedash_session";
/// [`NAME`] with the prefix browsers hold to host-only, Secure, `Path=/`.
pub const HOST_NAME: &str = "__Host-livedash_session";

#[derive(Debug, Clone, Default)]
pub struct CookiePolicy {
    /// Secure whatever the request says (`LIVEDASH_SECURE_COOKIES`).
    pub always_secure: bool,
    /// `LIVEDASH_COOKIE_DOMAIN`.
    pub domain: Option<String>,
}

impl CookiePolicy {
    /// Whether the browser reached us over TLS (or we are told to assume so).
    pub fn secure(&self, headers: &HeaderMap) -> bool {
        self.always_secure || over_tls(headers)
    }

    /// The cookie's name for a request with these headers.
    pub fn name(&self, headers: &HeaderMap) -> &'static str {
        if self.secure(headers) && self.domain.is_none() { HOST_NAME } else { NAME }
    }

    /// The cookie that carries `token` for `ttl`.
    pub fn issue(&self, token: String, ttl: Duration, headers: &HeaderMap) -> Cookie<'static> {
        let mut cookie = Cookie::build((self.name(headers), token))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure(headers))
            .path("/")
            .max_age(time::Duration::seconds(ttl.as_secs() as i64))
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    /// A cookie that makes the browser forget the session (same name, domain and security, or it
    /// would not replace it).
    pub fn removal(&self, headers: &HeaderMap) -> Cookie<'static> {
        let mut cookie = self.issue(String::new(), Duration::ZERO, headers);
        cookie.make_removal();
        cookie
    }

    /// The session token a request carries.
    pub fn read(&self, headers: &HeaderMap) -> Option<String> {
        let jar = axum_extra::extract::CookieJar::from_headers(headers);
        jar.get(self.name(headers)).map(|c| c.value().to_owned())
    }
}

/// Whether the browser reached us over TLS, directly or through a proxy that says so.
fn over_tls(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    const TTL: Duration = Duration::from_secs(3600);

    #[test]
    fn over_tls_without_a_domain_the_cookie_is_host_only() {
        let policy = CookiePolicy::default();
        let tls = headers(&[("x-forwarded-proto", "https")]);
        let text = policy.issue("t".into(), TTL, &tls).to_string();
        assert!(text.starts_with("__Host-livedash_session=t;"), "{text}");
        for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(text.contains(attribute), "{attribute} in {text}");
        }
        assert!(!text.contains("Domain"), "{text}");
        let always = CookiePolicy { always_secure: true, domain: None };
        assert_eq!(always.name(&HeaderMap::new()), HOST_NAME);
    }

    #[test]
    fn a_domain_or_plain_http_keeps_the_plain_name() {
        let plain = CookiePolicy::default().issue("t".into(), TTL, &HeaderMap::new()).to_string();
        assert!(plain.starts_with("livedash_session=t;") && !plain.contains("Secure"), "{plain}");
        let shared = CookiePolicy { always_secure: true, domain: Some("example.com".into()) };
        let text = shared.issue("t".into(), TTL, &HeaderMap::new()).to_string();
        assert!(text.starts_with("livedash_session=t;") && text.contains("Domain=example.com"), "{text}");
    }

    #[test]
    fn a_request_is_read_under_its_own_name_only() {
        let policy = CookiePolicy::default();
        let tls_with = |cookie: &str| headers(&[("x-forwarded-proto", "https"), ("cookie", cookie)]);
        assert_eq!(policy.read(&tls_with("__Host-livedash_session=a")), Some("a".into()));
        assert_eq!(policy.read(&tls_with("livedash_session=planted")), None, "a cookie a sibling host could set");
        assert_eq!(policy.read(&headers(&[("cookie", "livedash_session=b")])), Some("b".into()));
    }

    #[test]
    fn the_removal_replaces_the_cookie_it_removes() {
        let policy = CookiePolicy::default();
        let tls = headers(&[("x-forwarded-proto", "https")]);
        let text = policy.removal(&tls).to_string();
        assert!(
            text.starts_with("__Host-livedash_session=;") && text.contains("Secure") && text.contains("Max-Age=0"),
            "{text}"
        );
    }
}
