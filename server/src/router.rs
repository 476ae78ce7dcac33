//! Every route of a node: health and readiness, the live transports, the JSON API, the pages and
//! the site's files, behind the CSRF guard, CORS and the body timeout.

use app::{App, shell};
use axum::{Router, routing::get};
use leptos_axum::{LeptosRoutes, generate_route_list};

use crate::{AppState, Livedash};
use crate::{api, assets, cors, csrf, pages, telemetry, transport, vitals};

impl Livedash {
    pub fn router(&self) -> Router {
        let state = self.state.clone();
        let routes = generate_route_list(App);
        let options = state.leptos_options.clone();
        let urls = self.site_urls.clone();
        let page = move |options| shell(options, urls.clone());
        let pages = {
            let page = page.clone();
            Router::new()
                .leptos_routes(&state, routes, move || page(options.clone()))
                .route_layer(axum::middleware::from_fn_with_state(state.clone(), pages::require_session))
                .layer(axum::middleware::map_response(assets::revalidate))
        };
        let files = Router::new().route("/assets/{hash}/{*path}", get(assets::hashed)).with_state(self.assets.clone());
        // What is neither a route nor a file found at start-up goes to leptos_axum's handler: it
        // serves a file of the site root written since (without the freshness check of its
        // precompressed copies), and otherwise renders the app's own "not found" page.
        let errors = leptos_axum::file_and_error_handler::<AppState, _>(page);
        let site_files = self.assets.clone();
        let metrics = match state.config.metrics_addr {
            Some(_) => Router::new(),
            None => telemetry::router(state.config.metrics_token.clone()),
        };
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readiness))
            .merge(metrics)
            .route("/api/ws", get(transport::ws::upgrade))
            .route("/api/stream/dashboard/{id}", get(transport::sse::dashboard))
            .route("/api/v1/realtime/jobs/{job}", get(transport::job_stream::job))
            .route("/api/v1/dashboards/{id}/updates", get(transport::poll::updates))
            .merge(api::routes())
            .merge(pages)
            .merge(files)
            .fallback(move |uri, state, request| {
                let (site, errors) = (site_files.clone(), errors.clone());
                async move {
                    match site.serve_plain(request).await {
                        Ok(file) => file,
                        Err(request) => assets::revalidate(errors(uri, state, request).await).await,
                    }
                }
            })
            .layer(axum::middleware::from_fn_with_state(state.clone(), csrf::guard))
            .layer(tower::util::option_layer(cors::layer(&state.config.allowed_origins)))
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(state.config.body_read_timeout))
            .with_state(state)
    }
}

/// `/readyz`: whether a load balancer should send this node new clients ([`vitals`]). `/healthz`
/// stays the liveness check (the process answers), so a node that lost Redis or its database is
/// not restarted for it.
async fn readiness(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let engine = state.engine.name();
    let problem = vitals::unready_because(&state).await;
    let body = serde_json::json!({
        "ready": problem.is_none(),
        "engine": engine,
        "store": state.store.backend_name(),
        "problem": problem,
    });
    let status =
        if problem.is_none() { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}
