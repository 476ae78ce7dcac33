//! `livedash`: reads its configuration, serves until Ctrl-C or SIGTERM, then shuts down gracefully.

use anyhow::Context;
use server::{Livedash, config::Config, demo};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::memory::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let config = Config::load().context("invalid configuration")?;
    let leptos_options =
        leptos::config::get_configuration(None).context("reading Leptos settings (LEPTOS_* variables)")?.leptos_options;
    let addr = leptos_options.site_addr;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let demo = config.demo;
    let livedash = Livedash::start(config, leptos_options).await?;
    tracing::info!(%url, demo, "livedash is listening");
    println!("livedash is running at {url}  (Ctrl-C stops it)");
    match livedash.metrics_addr() {
        Some(metrics) => println!("Prometheus metrics: http://{metrics}/metrics"),
        None => println!("Prometheus metrics: {url}/metrics (with the metrics token)"),
    }
    if demo {
        print_demo_access(&url, &livedash);
        if !addr.ip().is_loopback() {
            let warning = "demo mode is on and livedash listens beyond this machine: the demo passwords are public, \
                           so anyone who can reach it can sign in (LIVEDASH_DEMO=off turns demo mode off)";
            tracing::warn!(%addr, "{warning}");
            eprintln!("\nWARNING: {warning}\n");
        }
    }
    livedash.serve(listener, stop_requested()).await
}

fn print_demo_access(url: &str, livedash: &Livedash) {
    println!("\nDemo mode (LIVEDASH_DEMO=off turns it off). Sign in with password {:?} as:", demo::PASSWORD);
    for (email, tenant, role) in demo::USERS {
        println!("  {email:<18} {role:?} of {tenant}");
    }
    println!("Publish with a tenant's API key (new at every start), for example:");
    for (tenant, key) in livedash.demo_keys() {
        println!("  {tenant:<7} {key}");
    }
    if let Some((_, key)) = livedash.demo_keys().first() {
        println!(
            "  curl -X POST {url}/api/v1/publish/kpi/custom -H 'Authorization: Bearer {key}' \\\n       -H 'Content-Type: application/json' -d '{{\"values\": {{\"answer\": 42}}}}'\n  \
             (add -H 'Idempotency-Key: <a UUID>' to retry it safely; the API: {url}/api/openapi.json)\n"
        );
    }
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
