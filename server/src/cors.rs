//! CORS for pages served from elsewhere on the same site — the static front end (`site-static/`, built by
//! Trunk) on a CDN or another web server: the configured origins (`LIVEDASH_ALLOWED_ORIGINS`) may
//! call the JSON API and the HTTP live transports with the session cookie, and read the answers.
//!
//! Any other origin gets no CORS headers, so its scripts cannot read an answer or send JSON; and
//! a cross-site page gets no session cookie either, since it is SameSite=Strict. WebSockets are not
//! subject to CORS: the upgrade checks the same list itself (`auth::origin`).

use axum::http::{HeaderValue, Method, header};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The layer for these origins; `None` when only the server's own pages use it.
pub fn layer(allowed_origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([header::CONTENT_TYPE])
            // The polling transport's backoff reads it.
            .expose_headers([header::RETRY_AFTER])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}
