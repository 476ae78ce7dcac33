//! The browser's calls to livedash's JSON API (hydrate only): `fetch` with the session cookie, and
//! where the server is.
//!
//! The server renders the page itself, so every URL is relative — except in the static build
//! (`site-static/`, built by Trunk), which a CDN or another web server of the same site serves: it names the
//! server once at start ([`use_server`]), and every API call, stream and socket goes there, with
//! the session cookie (the server answers those origins with CORS; see the README).

use std::{sync::OnceLock, time::Duration};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, AbortSignal, EventSource, EventSourceInit, Request, RequestCredentials, RequestInit, Response,
};

static SERVER: OnceLock<String> = OnceLock::new();

/// The page was served from elsewhere: the livedash server is at `origin` (`https://api.example.com`).
pub fn use_server(origin: &str) {
    let _ = SERVER.set(origin.trim_end_matches('/').to_owned());
}

/// The server's URL of `path` (`/api/…`): relative when the server serves the page.
pub fn server_url(path: &str) -> String {
    match SERVER.get() {
        Some(origin) => format!("{origin}{path}"),
        None => path.to_owned(),
    }
}

/// The WebSocket URL of `path` on the server.
pub fn socket_url(path: &str) -> String {
    let origin = match SERVER.get() {
        Some(origin) => origin.clone(),
        None => web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default(),
    };
    let origin = match origin.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => origin,
    };
    format!("{origin}{path}")
}

/// An `EventSource` on the server's `path`, sending the session cookie wherever the server is.
pub fn event_source(path: &str) -> Option<EventSource> {
    let init = EventSourceInit::new();
    init.set_with_credentials(SERVER.get().is_some());
    EventSource::new_with_event_source_init_dict(&server_url(path), &init).ok()
}

/// What the server answered.
pub struct Reply {
    pub status: u16,
    pub text: String,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u32>,
}

/// Status and body text of an API call; `Err` when the request could not be made at all.
pub async fn call(method: &str, url: &str, json_body: Option<&str>) -> Result<(u16, String), String> {
    fetch(method, url, json_body).await.map(|reply| (reply.status, reply.text))
}

/// An API call's whole reply; `Err` when the request could not be made at all.
pub async fn fetch(method: &str, url: &str, json_body: Option<&str>) -> Result<Reply, String> {
    request(method, url, json_body, None).await
}

/// Like [`fetch`], but a reply (body included) that takes longer than `limit` is abandoned: the
/// request is aborted and `Err` returned. A live connection must never wait on a request that
/// hangs.
pub async fn fetch_within(method: &str, url: &str, json_body: Option<&str>, limit: Duration) -> Result<Reply, String> {
    let controller = AbortController::new().map_err(|e| format!("{e:?}"))?;
    let abort = {
        let controller = controller.clone();
        leptos::prelude::set_timeout_with_handle(move || controller.abort(), limit).ok()
    };
    let reply = request(method, url, json_body, Some(&controller.signal())).await;
    if let Some(abort) = abort {
        abort.clear();
    }
    reply
}

async fn request(
    method: &str,
    url: &str,
    json_body: Option<&str>,
    signal: Option<&AbortSignal>,
) -> Result<Reply, String> {
    let init = RequestInit::new();
    init.set_signal(signal);
    init.set_method(method);
    // The static build's page is of another origin of the same site: the cookie goes along.
    init.set_credentials(if SERVER.get().is_some() {
        RequestCredentials::Include
    } else {
        RequestCredentials::SameOrigin
    });
    if let Some(body) = json_body {
        init.set_body(&body.into());
    }
    let request = Request::new_with_str_and_init(&server_url(url), &init).map_err(|e| format!("{e:?}"))?;
    // Every state change is JSON, body or not: the server refuses any other kind (no form can send
    // this one, so no other site can make the browser send it for us).
    if json_body.is_some() || method != "GET" {
        request.headers().set("Content-Type", "application/json").map_err(|e| format!("{e:?}"))?;
    }
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| "the server could not be reached".to_owned())?
        .unchecked_into();
    let text = JsFuture::from(response.text().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?
        .as_string()
        .unwrap_or_default();
    let retry_after = response.headers().get("retry-after").ok().flatten().and_then(|v| v.trim().parse().ok());
    Ok(Reply { status: response.status(), text, retry_after })
}

/// Sends `body` (if any) as JSON and expects a 2xx answer: its body text, or why it failed in words
/// (the server's own `message` where it sent one).
pub async fn send_json(method: &str, url: &str, body: Option<&impl serde::Serialize>) -> Result<String, String> {
    let json = body.map(|b| serde_json::to_string(b).expect("API bodies serialise"));
    let (status, text) = call(method, url, json.as_deref()).await?;
    if (200..300).contains(&status) {
        return Ok(text);
    }
    Err(serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("the server answered {status}")))
}

/// Sends the browser to `path` (a full navigation: the new page starts a fresh session).
pub fn go_to(path: &str) {
    if let Some(window) = web_sys::window() {
        let _ = window.location().set_href(path);
    }
}
