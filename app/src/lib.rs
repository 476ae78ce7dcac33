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
use leptos_meta::{MetaTags, Stylesheet, provide_meta_context};
use leptos_router::{
    ParamSegment, StaticSegment,
    components::{ParentRoute, Route, Router, Routes},
};

/// Path of the ECharts bundle in the site root; the build copies it there from the npm package.
pub const ECHARTS_SCRIPT: &str = "/vendor/echarts.min.js";

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                // A classic script: charming calls the global `echarts`, which must exist before
                // the (deferred, module) hydration script runs.
                <script src=ECHARTS_SCRIPT></script>
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
        <Stylesheet id="leptos" href="/pkg/livedash.css"/>
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
