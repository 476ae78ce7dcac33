//! livedash's shared crate: the wire protocol, the live-client library and the Leptos UI.
//!
//! Compiled twice: with `ssr` into the server (which renders the pages and speaks the protocol) and
//! with `hydrate` into the browser bundle (which takes the pages over and keeps them live).

pub mod components;
pub mod dashboard;
#[cfg(feature = "hydrate")]
pub mod http;
pub mod live;
pub mod pages;
pub mod protocol;
pub mod widgets;

use leptos::prelude::*;
use leptos_meta::{MetaTags, provide_meta_context};
use leptos_router::{
    ParamSegment, StaticSegment,
    components::{ParentRoute, Route, Router, Routes},
};

/// Path of the ECharts bundle in the site root; the build copies it there from the npm package.
pub const ECHARTS_SCRIPT: &str = "/vendor/echarts.min.js";
/// Path of the site's icon in the site root.
pub const FAVICON: &str = "/favicon.svg";

/// The URLs the page links its files by. The server gives URLs that name their content (so
/// browsers may keep the files); the plain paths otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUrls {
    pub stylesheet: String,
    pub echarts: String,
    pub favicon: String,
}

impl SiteUrls {
    /// The plain paths, for a package directory and output name (`pkg`, `livedash`).
    pub fn plain(pkg_dir: &str, output_name: &str) -> Self {
        Self {
            stylesheet: format!("/{pkg_dir}/{output_name}.css"),
            echarts: ECHARTS_SCRIPT.to_owned(),
            favicon: FAVICON.to_owned(),
        }
    }
}

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions, urls: SiteUrls) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href=urls.favicon type="image/svg+xml"/>
                // `cargo leptos watch` finds the stylesheet by its `pkg/livedash.css` path and swaps
                // it for the plain path, which the server serves too.
                <link id="leptos" rel="stylesheet" href=urls.stylesheet/>
                // A classic script: charming calls the global `echarts`, which must exist before
                // the (deferred, module) hydration script runs.
                <script src=urls.echarts></script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Router>
            <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                // One parent for every live page: its connection survives moving between dashboards.
                <ParentRoute path=StaticSegment("") view=pages::LiveShell>
                    <Route path=StaticSegment("") view=pages::DashboardPage/>
                    <Route path=(StaticSegment("d"), ParamSegment("id")) view=pages::DashboardPage/>
                </ParentRoute>
                <Route path=StaticSegment("login") view=pages::LoginPage/>
            </Routes>
        </Router>
    }
}
