//! No state change from another site (cross-site request forgery).
//!
//! A browser attaches the session cookie to requests other pages make: SameSite=Strict keeps it off
//! cross-site requests, but not off a sibling subdomain's (same-site), and a plain HTML form can post
//! `text/plain` anywhere without a CORS preflight. So every cookie-authenticated request that changes
//! state passes two checks here, in one middleware rather than in each handler:
//!
//! 1. **Where it comes from.** An `Origin` on the allowed list (the same rule as the live
//!    connections', [`crate::auth::origin::allowed`]); or, when a browser left `Origin` out, a Fetch
//!    Metadata `Sec-Fetch-Site: same-origin`. Scripts can set neither header. A request with
//!    neither is refused: every browser sends one of them, and other clients can send `Origin`.
//! 2. **What it is.** `Content-Type: application/json`, which no form can send and no cross-origin
//!    script can send without a preflight that the CORS layer answers only for allowed origins. A
//!    request with nothing to read (a `DELETE`) may name no type; one that names another is refused
//!    whatever its length, since a form always names its own.
//!
//! Only POST, PUT, PATCH and DELETE change anything; every other method passes (the router answers
//! `405` to those it does not route). The publish API is exempt: it takes an API key in
//! `Authorization`, which a browser never attaches by itself, and never a cookie.

use crate::{
    AppState,
    auth::origin,
    client_addr::ClientAddr,
    http_error::ApiError,
    store::audit::{AuditEntry, Outcome},
    telemetry,
};
use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use protocol::ErrorCode;

/// Routes authenticated by an API key alone.
const API_KEY_ROUTES: &str = "/api/v1/publish/";

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// `Origin` names a page that is not allowed.
    ForeignOrigin,
    /// No `Origin`, and `Sec-Fetch-Site` does not say same-origin (or is missing).
    NotSameOrigin,
    /// Not `application/json`.
    NotJson,
}

impl Violation {
    /// The reason in `livedash_denials_total`.
    pub fn metric(self) -> &'static str {
        match self {
            Violation::ForeignOrigin | Violation::NotSameOrigin => "cross_site_request",
            Violation::NotJson => "not_json",
        }
    }

    fn error(self) -> ApiError {
        match self {
            Violation::ForeignOrigin => ApiError::forbidden("requests from this origin may not change anything here"),
            Violation::NotSameOrigin => ApiError::forbidden(
                "a request that changes something must come from an allowed page: send Origin \
                 (browsers do; other clients must too)",
            ),
            Violation::NotJson => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the request as Content-Type: application/json",
            ),
        }
    }
}

/// Whether a request may go ahead. Pure: the middleware gives it the method, path and headers.
pub fn check(method: &Method, path: &str, headers: &HeaderMap, allowed_origins: &[String]) -> Result<(), Violation> {
    let changes = matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    if !changes || path.starts_with(API_KEY_ROUTES) {
        return Ok(());
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match text(header::ORIGIN.as_str()) {
        Some(from) => {
            if !origin::allowed(Some(from), text(header::HOST.as_str()), allowed_origins) {
                return Err(Violation::ForeignOrigin);
            }
        }
        None => {
            if !text("sec-fetch-site").is_some_and(|site| site.eq_ignore_ascii_case("same-origin")) {
                return Err(Violation::NotSameOrigin);
            }
        }
    }
    let has_body = text(header::CONTENT_LENGTH.as_str()).is_some_and(|length| length.trim() != "0")
        || headers.contains_key(header::TRANSFER_ENCODING);
    match text(header::CONTENT_TYPE.as_str()) {
        Some(content_type) if !is_json(content_type) => Err(Violation::NotJson),
        None if has_body => Err(Violation::NotJson),
        _ => Ok(()),
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The middleware: refuses with the API's error body, counts it and audits it (digested per source).
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let verdict = check(request.method(), request.uri().path(), request.headers(), &state.config.allowed_origins);
    let Err(refusal) = verdict else {
        return next.run(request).await;
    };
    let (mut parts, _body) = request.into_parts();
    let ClientAddr(source) = match ClientAddr::from_request_parts(&mut parts, &state).await {
        Ok(addr) => addr,
        Err(never) => match never {},
    };
    telemetry::denied(refusal.metric());
    let origin = parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("none");
    state.auditor.record(AuditEntry {
        tenant: None,
        actor: Some(source.to_string()),
        action: "cross_site_request",
        outcome: Outcome::Denied,
        detail: Some(format!("{} {} refused ({:?}, Origin {origin:.100})", parts.method, parts.uri.path(), refusal)),
    });
    refusal.error().into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "127.0.0.1:3000";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HOST.parse().unwrap());
        for (name, value) in pairs {
            map.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    fn post(pairs: &[(&str, &str)]) -> Result<(), Violation> {
        check(&Method::POST, "/api/dashboards", &headers(pairs), &[])
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn our_own_pages_and_clients_that_say_where_they_are_from_may_change_state() {
        assert_eq!(post(&[("origin", "http://127.0.0.1:3000"), JSON]), Ok(()));
        assert_eq!(post(&[("sec-fetch-site", "same-origin"), JSON]), Ok(()), "a browser that left Origin out");
        assert_eq!(
            post(&[("origin", "http://127.0.0.1:3000"), ("content-type", "application/json; charset=utf-8")]),
            Ok(())
        );
    }

    #[test]
    fn another_site_may_not() {
        assert_eq!(post(&[("origin", "http://evil.test"), JSON]), Err(Violation::ForeignOrigin));
        assert_eq!(post(&[("origin", "null"), JSON]), Err(Violation::ForeignOrigin), "sandboxed frames and files");
        for site in ["cross-site", "same-site", "none"] {
            assert_eq!(post(&[("sec-fetch-site", site), JSON]), Err(Violation::NotSameOrigin), "{site}");
        }
        assert_eq!(post(&[JSON]), Err(Violation::NotSameOrigin), "neither header");
    }

    #[test]
    fn only_json_changes_state() {
        let origin = ("origin", "http://127.0.0.1:3000");
        for form in
            ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"]
        {
            assert_eq!(post(&[origin, ("content-type", form)]), Err(Violation::NotJson), "{form}");
        }
        assert_eq!(post(&[origin, ("content-length", "2")]), Err(Violation::NotJson), "a body of no type");
        assert_eq!(post(&[origin, ("transfer-encoding", "chunked")]), Err(Violation::NotJson), "a body of no type");
        assert_eq!(post(&[origin]), Ok(()), "nothing to read: a DELETE, a sign-out");
        assert_eq!(post(&[origin, ("content-length", "0")]), Ok(()), "nothing to read");
    }

    #[test]
    fn every_state_changing_method_is_checked_and_safe_ones_are_not() {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(check(&method, "/api/auth/logout", &headers(&[]), &[]).is_err(), "{method}");
        }
        for method in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(check(&method, "/api/dashboards", &headers(&[]), &[]).is_ok(), "{method}");
        }
        let key_only = check(&Method::POST, "/api/v1/publish/sales/orders", &headers(&[]), &[]);
        assert_eq!(key_only, Ok(()), "the API-key publish route carries no cookie authority");
    }

    #[test]
    fn the_static_builds_origins_keep_working() {
        let list = vec!["https://dash.example.com".to_owned()];
        let from = |origin| check(&Method::PUT, "/api/me/preferences", &headers(&[("origin", origin), JSON]), &list);
        assert_eq!(from("https://dash.example.com"), Ok(()));
        assert_eq!(from("https://evil.example.com"), Err(Violation::ForeignOrigin), "a sibling subdomain");
    }
}
