//! livedash's pages and live-client library (the wire contract they speak is the `protocol` crate).
//!
//! Compiled twice: with `ssr` into the server (which renders the pages and speaks the protocol) and
//! with `hydrate` into the browser bundle (which takes the pages over and keeps them live).

pub mod components;
#[cfg(feature = "hydrate")]
pub mod http;
pub mod live;
pub mod pages;
pub mod routes;
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

/// The global the browser bundle sets once the app has started (see [`RELOAD_UNTIL_STARTED`]).
pub const STARTED_FLAG: &str = "livedashStarted";

/// Run before the app: a network that drops while the page loads can make the app's own files
/// (its script, its WebAssembly) fail to arrive, which leaves the server-rendered page saying
/// "Connecting" for good. Until the app has started, such a failure (an unhandled rejection of the
/// hydration script's promises) reloads the page as soon as the server answers again: tried after
/// 2 s, then doubling up to 30 s. Written without `<`, `>` or `&`, which the page would escape.
const RELOAD_UNTIL_STARTED: &str = r#"(function () {
  var wait = 2000, pending = false;
  function started() { return window.STARTED_FLAG === true; }
  function later() {
    if (pending || started()) return;
    pending = true;
    setTimeout(function () {
      pending = false;
      if (started()) return;
      fetch('/healthz', { cache: 'no-store' }).then(function (r) {
        if (r.ok) { location.reload(); } else { later(); }
      }, later);
      wait = Math.min(wait * 2, 30000);
    }, wait);
  }
  window.addEventListener('unhandledrejection', later);
})();"#;

/// Marks the app as started: a page whose app loaded no longer reloads itself.
#[cfg(feature = "hydrate")]
pub fn mark_started() {
    let _ = js_sys::Reflect::set(&js_sys::global(), &STARTED_FLAG.into(), &true.into());
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
                <script inner_html=RELOAD_UNTIL_STARTED.replace("STARTED_FLAG", STARTED_FLAG)></script>
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
                // A wall display has a page of its own: no header, no controls, its own connection.
                <Route path=(StaticSegment("display"), ParamSegment("id")) view=pages::DisplayPage/>
            </Routes>
        </Router>
    }
}
