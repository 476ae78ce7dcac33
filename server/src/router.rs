//! Every route of a node: health and readiness, the live transports, the JSON API, the pages and
//! the site's files, behind the CSRF guard, CORS and the body timeout.

use app::{App, shell};
use axum::{Router, routing::get};
use leptos_axum::{LeptosRoutes, generate_route_list};

use crate::{AppState, Livedash};
use crate::{api, assets, cors, csrf, pages, telemetry};

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
        let files = Router::new()
            .route("/assets/{hash}/{*path}", get(assets::hashed))
            .route("/api/docs", get(api::docs_page::page))
            .with_state(self.assets.clone());
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
            .merge(metrics)
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
