//! `livedash`: reads its configuration, serves until Ctrl-C or SIGTERM, then shuts down gracefully.

use anyhow::Context;
use server::{Livedash, config::Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let config = Config::from_env().context("invalid configuration")?;
    let leptos_options =
        leptos::config::get_configuration(None).context("reading Leptos settings (LEPTOS_* variables)")?.leptos_options;
    let addr = leptos_options.site_addr;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let demo = if config.demo_feed { "demo feed on" } else { "demo feed off" };
    tracing::info!(%url, "livedash is listening ({demo})");
    println!("livedash is running at {url}  (Ctrl-C stops it)");
    Livedash::new(config, leptos_options).serve(listener, stop_requested()).await
}

async fn stop_requested() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            term.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
