//! The HTTP API's contract: an OpenAPI 3.1 document made from the handlers' own
//! `#[utoipa::path]` attributes and the types they read and answer, served at
//! `GET /api/openapi.json`. The routes are registered from the same attributes
//! ([`super::routes`] uses `utoipa_axum`), so a route cannot exist without its description, nor a
//! description without its route.
//!
//! What every operation can answer whatever it does is added here, once, by [`CommonAnswers`]
//! rather than repeated on each handler: the 401 of a session that is missing, the 403 and 415 of
//! the CSRF guard on every state change made with a cookie, the 400 of a path or query parameter
//! that does not parse, the 400, 408 and 413 of a body, and the 500 and 503 any request may meet.

use protocol::ErrorBody;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, ToSchema};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "livedash HTTP API",
        description = "Publishing, dashboards, administration and the live transports' HTTP side. \
            The WebSocket's messages, the SSE events and the delivery guarantee are in docs/protocol.md. \
            Every error has one body (`ErrorBody`). Every request that changes something with the \
            session cookie must send `Content-Type: application/json` and an allowed `Origin`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    tags(
        (name = "auth", description = "Signing in and out, and the session"),
        (name = "publish", description = "Publishing data with an API key"),
        (name = "dashboards", description = "Stored dashboards and their widgets (editing needs the admin role)"),
        (name = "me", description = "The signed-in user's own choices"),
        (name = "admin", description = "Tenant administration (admins only)"),
        (name = "displays", description = "Wall displays: made by admins, opened by a screen with the link's secret"),
        (name = "live", description = "The live transports' HTTP side: WebSocket upgrade, Server-Sent Events, polling"),
        (name = "health", description = "Liveness and readiness, for load balancers"),
    ),
    components(schemas(ErrorBody)),
)]
pub struct ApiDoc;

/// The two ways a caller is known: the session cookie (people and wall displays) and an API key
/// (publishers).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let cookie = ApiKeyValue::with_description(
            crate::auth::session_cookie::NAME,
            "The session cookie `POST /api/auth/login` (or, for a wall display, `POST /api/display/session`) \
             sets; named `__Host-livedash_session` over TLS",
        );
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)));
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("ld_<id>_<secret>")
            .description(Some("A tenant's API key: `Authorization: Bearer ld_…`"))
            .build();
        components.add_security_scheme("apiKey", SecurityScheme::Http(bearer));
        // Whatever an operation does not say otherwise needs a session.
        api.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("session", Vec::<String>::new())]);
    }
}

/// The answers every operation of a kind can give, added where the operation does not describe
/// them itself.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, api: &mut OpenApi) {
        let default_security = api.security.clone().unwrap_or_default();
        for item in api.paths.paths.values_mut() {
            for (method, operation) in operations(item) {
                let security = operation.security.clone().unwrap_or_else(|| default_security.clone());
                // Required: every alternative names it (an empty one, `{}`, means none is needed).
                let requires = |scheme: &str| {
                    let name = format!("\"{scheme}\"");
                    !security.is_empty()
                        && security.iter().all(|r| serde_json::to_string(r).unwrap_or_default().contains(&name))
                };
                let (session, api_key) = (requires("session"), requires("apiKey"));
                let changes = method != "get";
                let has_body = operation.request_body.is_some();
                let parsed_parameters = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|parameter| matches!(parameter.parameter_in, ParameterIn::Path | ParameterIn::Query));
                let mut add = |status: &str, what: &str, retry: bool| {
                    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| error(what, retry));
                };
                if session {
                    add("401", "No session, or a forged, expired or logged-out one", false);
                }
                if changes && !api_key {
                    add(
                        "403",
                        "Another site's request (`Origin`, `Sec-Fetch-Site`), a role that may not do this, or a wall display's session (displays only read)",
                        false,
                    );
                    add("415", "A state change whose body is not `application/json`", false);
                }
                if parsed_parameters {
                    add("400", "A path or query parameter that does not parse; `field` is `path` or `query`", false);
                }
                if has_body {
                    add("400", "A malformed body; `field` names the faulty part", false);
                    add("408", "The body did not arrive within `LIVEDASH_BODY_READ_TIMEOUT_SECS`", false);
                    add("413", "The body is larger than the endpoint takes", false);
                }
                add("500", "Something failed on the server; its log has the cause", false);
                add(
                    "503",
                    "The node cannot serve this now: its connection limit, or Redis or the database not answering",
                    true,
                );
            }
        }
    }
}

/// An operation of a path, by its method in lower case.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
    .collect()
}

/// An error answer: [`ErrorBody`], with `Retry-After` where waiting helps.
fn error(description: &str, retry_after: bool) -> RefOr<Response> {
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build();
    let mut response = ResponseBuilder::new().description(description).content("application/json", body);
    if retry_after {
        let seconds = HeaderBuilder::new()
            .schema(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Integer))
            .description(Some("seconds to wait before trying again"))
            .build();
        response = response.header("Retry-After", seconds);
    }
    RefOr::T(response.build())
}

/// The document as served, from what the routes described: with the security schemes and the
/// common answers (added after the routes, which `utoipa_axum` merges into the document last), and
/// axum's catch-all segments (`{*topic}`) written as OpenAPI knows them (`{topic}`, which,
/// percent-encoded, may hold the `/` a wildcard takes).
pub fn document(mut api: OpenApi) -> OpenApi {
    let paths = std::mem::take(&mut api.paths.paths);
    api.paths.paths = paths.into_iter().map(|(path, item)| (path.replace("{*", "{"), item)).collect();
    SecuritySchemes.modify(&mut api);
    CommonAnswers.modify(&mut api);
    api
}
