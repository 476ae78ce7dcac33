//! Which pages need a session, decided before anything renders.
//!
//! A signed-out visitor of a live page is sent to the sign-in page by the server itself (`303`, with
//! where they were going in `next`), so the browser never loads a dashboard that would only ask the
//! API, be told `401` (logged as errors in the console) and give up. A signed-in visitor of the sign-in
//! page goes on to where they were going. The socket's own `4401` still covers a session that ends
//! while a page is open.

use crate::{AppState, auth::AuthError};
use app::routes::{DISPLAY_PATH, LOGIN_PATH, after_sign_in};
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

/// Middleware for the routed pages. A display's page needs no session (the screen trades its
/// link's secret for one there); a display session is sent to its own page from any other.
pub async fn require_session(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let uri = request.uri();
    if uri.path().starts_with(DISPLAY_PATH) {
        return next.run(request).await;
    }
    let signed_in = match state.auth.session_of(request.headers()).await {
        Ok(session) => match &session.display {
            Some(display) => return Redirect::to(&format!("{DISPLAY_PATH}/{}", display.id)).into_response(),
            None => true,
        },
        // The page renders; its socket reports the failure (1011) and retries.
        Err(AuthError::Store(_)) => return next.run(request).await,
        Err(_) => false,
    };
    let uri = request.uri();
    match (uri.path() == LOGIN_PATH, signed_in) {
        (false, false) => Redirect::to(&login_url(uri.path_and_query().map_or("/", |p| p.as_str()))).into_response(),
        (true, true) => {
            let next = uri.query().and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "next"));
            Redirect::to(after_sign_in(next.as_ref().map(|(_, v)| v.as_ref()))).into_response()
        }
        _ => next.run(request).await,
    }
}

/// The sign-in page, with `next` unless the visitor was going to the start page anyway.
fn login_url(going_to: &str) -> String {
    if going_to == "/" {
        return LOGIN_PATH.to_owned();
    }
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("next", going_to).finish();
    format!("{LOGIN_PATH}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_page_needs_no_next() {
        assert_eq!(login_url("/"), "/login");
        assert_eq!(login_url("/d/3"), "/login?next=%2Fd%2F3");
        assert_eq!(login_url("/d/3?x=1&y=2"), "/login?next=%2Fd%2F3%3Fx%3D1%26y%3D2");
    }
}
