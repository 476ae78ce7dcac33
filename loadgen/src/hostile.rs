//! Hostile clients beside a normal load: N well-behaved viewers follow one topic published at R
//! messages a second, first alone, then while four hostile clients run: one that never reads, one
//! that sends 1,000 messages a second, one that opens connections in a loop, and one that subscribes
//! to 10,000 made-up topics. Prints the viewers' publish→receive latency in both phases and what
//! contained each hostile client.

use crate::{
    client::{self, Socket},
    server::Server,
    stats::Samples,
};
use protocol::ClientMessage;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::watch;

pub const TOPIC: &str = "bench/hot";

/// Settings: the defaults, but room for the viewers (one user) and publishes at the bench's rate.
pub fn settings(clients: usize) -> Vec<(&'static str, String)> {
    vec![
        ("LIVEDASH_MAX_CONNECTIONS_PER_USER", (clients + 20).to_string()),
        ("LIVEDASH_PUBLISHES_PER_SEC", "10000".into()),
    ]
}

pub async fn run(server: &Server, clients: usize, rate: u32, secs: u64) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let cookie = client::login(&http, &server.addr, "ops@acme.test").await?;
    let hostile_cookie = client::login(&http, &server.addr, "viewer@acme.test").await?;
    let epoch = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = watch::channel(false);
    let viewers = follow(&server.addr, &cookie, clients, epoch, &samples, &stopped).await?;
    let publisher = tokio::spawn(publish(
        server.url(&format!("/api/v1/publish/{TOPIC}")),
        server.api_key.clone(),
        rate,
        epoch,
        stopped.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await; // every viewer has its snapshot
    samples.lock().expect("samples").clear();

    let cpu = server.usage().cpu;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let alone = Samples::new(std::mem::take(&mut *samples.lock().expect("samples")));
    let alone_cpu = server.usage().cpu - cpu;
    println!("{clients} viewers × {rate} msg/s, alone for {secs} s: {}", alone.summary());
    println!("  server CPU {:.2} s", alone_cpu.as_secs_f64());

    let counts: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let hostiles = vec![
        tokio::spawn(never_reads(server.addr.clone(), hostile_cookie.clone(), stopped.clone())),
        tokio::spawn(floods(server.addr.clone(), hostile_cookie.clone(), counts.clone(), stopped.clone())),
        tokio::spawn(connects_in_a_loop(server.addr.clone(), hostile_cookie.clone(), counts.clone(), stopped.clone())),
        tokio::spawn(made_up_topics(server.addr.clone(), hostile_cookie, counts.clone(), stopped.clone())),
    ];
    let cpu = server.usage().cpu;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let beside = Samples::new(std::mem::take(&mut *samples.lock().expect("samples")));
    let beside_cpu = server.usage().cpu - cpu;
    stop.send_replace(true);
    for task in hostiles {
        let _ = task.await;
    }
    let _ = publisher.await;
    for viewer in viewers {
        viewer.abort();
    }
    println!("the same beside four hostile clients: {}", beside.summary());
    println!(
        "  server CPU {:.2} s, {:.0} MB resident",
        beside_cpu.as_secs_f64(),
        server.usage().rss_bytes as f64 / 1e6
    );
    println!("  what contained them:");
    for (what, count) in counts.lock().expect("counts").iter() {
        println!("    {what}: {count}");
    }
    for series in [
        "livedash_drops_total{reason=\"slow_subscriber\"}",
        "livedash_write_timeouts_total{transport=\"websocket\"}",
        "livedash_messages_in_total{type=\"rate_limited\"}",
        "livedash_denials_total{reason=\"connect_rate\"}",
        "livedash_denials_total{reason=\"subscriptions_per_connection\"}",
    ] {
        println!("    {series} {}", server.metric(series).await);
    }
    Ok(())
}

/// `clients` viewers of the bench topic on the server at `addr`, each from a loopback address of its
/// own, their latencies collected into `samples`.
pub async fn follow(
    addr: &str,
    cookie: &str,
    clients: usize,
    epoch: Instant,
    samples: &Arc<Mutex<Vec<Duration>>>,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut viewers = Vec::new();
    for n in 0..clients {
        let mut socket = client::open(addr, cookie, client::source(n)).await?;
        client::next_json(&mut socket).await;
        client::send(&mut socket, &client::subscribe("w", TOPIC, None)).await?;
        viewers.push(tokio::spawn(viewer(socket, epoch, samples.clone(), stopped.clone())));
    }
    Ok(viewers)
}

/// A viewer: every update carries its send time (µs since `epoch`) as its value.
async fn viewer(mut socket: Socket, epoch: Instant, samples: Arc<Mutex<Vec<Duration>>>, stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let Some(message) = client::next_json(&mut socket).await else { return };
        if message.get("type").is_some() {
            continue;
        }
        let now = epoch.elapsed();
        for item in message["series"].as_array().into_iter().flatten() {
            if let Some(sent) = item["value"].as_f64() {
                samples.lock().expect("samples").push(now.saturating_sub(Duration::from_micros(sent as u64)));
            }
        }
    }
}

pub async fn publish(url: String, key: String, rate: u32, epoch: Instant, stop: watch::Receiver<bool>) {
    let http = reqwest::Client::new();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    while !*stop.borrow() {
        ticks.tick().await;
        let sent = epoch.elapsed().as_micros() as f64;
        let body = format!(r#"{{"points": [{{"value": {sent}}}]}}"#);
        if let Err(e) = http.post(&url).bearer_auth(&key).body(body).send().await {
            eprintln!("publish failed: {e}");
        }
    }
}

/// Subscribes to the hot topic and never reads a byte.
async fn never_reads(addr: String, cookie: String, mut stop: watch::Receiver<bool>) {
    if let Ok(mut socket) = client::open(&addr, &cookie, [127, 2, 0, 1].into()).await {
        let _ = client::send(&mut socket, &client::subscribe("w", TOPIC, None)).await;
        let _ = stop.wait_for(|s| *s).await;
    }
}

/// Sends 1,000 pings a second, and reads what it is told.
async fn floods(
    addr: String,
    cookie: String,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    stop: watch::Receiver<bool>,
) {
    let Ok(socket) = client::open(&addr, &cookie, [127, 2, 0, 2].into()).await else { return };
    let (mut write, mut read) = futures_util::StreamExt::split(socket);
    let reader = tokio::spawn({
        let counts = counts.clone();
        async move {
            while let Some(Ok(message)) = futures_util::StreamExt::next(&mut read).await {
                if message.to_text().is_ok_and(|t| t.contains("rate_limited")) {
                    *counts.lock().expect("counts").entry("flooder: rate_limited errors").or_default() += 1;
                }
            }
        }
    });
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    let ping = tokio_tungstenite::tungstenite::Message::text(ClientMessage::Ping.to_json());
    while !*stop.borrow() {
        ticks.tick().await;
        if futures_util::SinkExt::send(&mut write, ping.clone()).await.is_err() {
            break;
        }
        *counts.lock().expect("counts").entry("flooder: messages sent").or_default() += 1;
    }
    reader.abort();
}

/// Opens connections as fast as it can, from one address.
async fn connects_in_a_loop(
    addr: String,
    cookie: String,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let outcome = match client::open(&addr, &cookie, [127, 2, 0, 3].into()).await {
            Ok(mut socket) => match client::next_json(&mut socket).await {
                Some(welcome) if welcome["type"] == "welcome" => "connect loop: admitted",
                _ => "connect loop: refused (closed with 4429)",
            },
            Err(_) => "connect loop: failed",
        };
        *counts.lock().expect("counts").entry(outcome).or_default() += 1;
    }
}

/// Subscribes to 10,000 topics that do not exist.
async fn made_up_topics(
    addr: String,
    cookie: String,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(mut socket) = client::open(&addr, &cookie, [127, 2, 0, 4].into()).await else { return };
    client::next_json(&mut socket).await;
    for i in 0..10_000 {
        if client::send(&mut socket, &client::subscribe(&format!("w{i}"), &format!("made-up/{i}"), None)).await.is_err()
        {
            break;
        }
    }
    loop {
        tokio::select! {
            message = client::next_json(&mut socket) => {
                let Some(message) = message else { break };
                if let Some(code) = message["code"].as_str() {
                    let what = match code {
                        "limit_exceeded" => "made-up topics: refused past the subscription limit",
                        "rate_limited" => "made-up topics: ignored past the message rate",
                        _ => "made-up topics: other errors",
                    };
                    *counts.lock().expect("counts").entry(what).or_default() += 1;
                }
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}
