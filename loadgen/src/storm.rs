//! Reconnect storm: N clients, all live; then every socket is cut at the same moment and each comes
//! back the way the browser's client does (its backoff policy, with jitter; a refused attempt
//! backs off further), resuming its subscription. Measures the time until all are live again, the
//! server's peak CPU and memory meanwhile, and how long a new sign-in takes during it.

use crate::{
    client::{self, Socket},
    server::{Sampler, Server},
    stats::Samples,
};
use protocol::{ClientMessage, backoff::Backoff};
use rand::{Rng, SeedableRng};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, watch};

const TOPIC: &str = "sales/orders";

/// Settings the storm needs beyond the defaults: one user holds every socket, all of them from
/// loopback addresses.
pub fn settings(clients: usize) -> Vec<(&'static str, String)> {
    vec![
        ("LIVEDASH_MAX_CONNECTIONS_PER_USER", (2 * clients).to_string()),
        ("LIVEDASH_LOGINS_PER_MIN_PER_ADDRESS", "100000".into()),
        ("LIVEDASH_MAX_HTTP_CONNECTIONS", (3 * clients).to_string()),
    ]
}

pub async fn run(server: &Server, clients: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let cookie = Arc::new(client::login(&http, &server.addr, "ops@acme.test").await?);
    let (cut, cuts) = watch::channel(0u32);
    let (live, mut lives) = mpsc::unbounded_channel::<(u32, Duration, u32)>();
    let started = Instant::now();
    for n in 0..clients {
        let (addr, cookie, cuts, live) = (server.addr.clone(), cookie.clone(), cuts.clone(), live.clone());
        tokio::spawn(async move { browser(n, addr, cookie, cuts, live).await });
    }
    drop(live);
    let mut connect = Vec::with_capacity(clients);
    while connect.len() < clients {
        let (_, took, _) = lives.recv().await.expect("clients alive");
        connect.push(took);
    }
    println!(
        "{clients} clients live after {:.1} s; connect (with jittered start) {}",
        started.elapsed().as_secs_f64(),
        Samples::new(connect).summary()
    );
    let before = server.usage();
    println!("server before the cut: {:.0} MB resident", before.rss_bytes as f64 / 1e6);

    let sampler = Sampler::start(server);
    let (stop_probe, probe) = watch::channel(false);
    let prober = tokio::spawn(probe_logins(server.addr.clone(), probe));
    let cut_at = Instant::now();
    cut.send_replace(1);
    let (mut back, mut attempts, mut slowest) = (0, 0u64, Duration::ZERO);
    while back < clients {
        let (generation, _, tries) = lives.recv().await.expect("clients alive");
        if generation == 1 {
            back += 1;
            attempts += u64::from(tries);
            slowest = cut_at.elapsed();
        }
    }
    stop_probe.send_replace(true);
    let logins = prober.await?;
    let (cpu, rss) = sampler.peaks();
    let after = server.usage();
    println!("cut {clients} sockets at once: all live again after {:.2} s", slowest.as_secs_f64());
    println!("  reconnect attempts: {attempts} for {clients} clients (refused ones backed off and retried)");
    println!("  server peak CPU {cpu:.0} % of one core, peak RSS {:.0} MB", rss as f64 / 1e6);
    println!("  server CPU during the storm: {:.2} s", (after.cpu - before.cpu).as_secs_f64());
    println!("  sign-ins during the storm: {}", logins.summary());
    Ok(())
}

/// One browser tab: live, and after each cut back with the client's backoff.
async fn browser(
    n: usize,
    addr: String,
    cookie: Arc<String>,
    mut cuts: watch::Receiver<u32>,
    live: mpsc::UnboundedSender<(u32, Duration, u32)>,
) {
    let backoff = Backoff::default();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    // Tabs were not opened in the same millisecond either.
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..3000))).await;
    let mut token: Option<String> = None;
    loop {
        let generation = *cuts.borrow_and_update();
        let began = Instant::now();
        let mut tries = 0;
        let mut socket = loop {
            tries += 1;
            match connect_and_subscribe(&addr, &cookie, n, token.clone()).await {
                Ok(socket) => break socket,
                Err(_) => tokio::time::sleep(backoff.delay(tries, rng.random())).await,
            }
        };
        if live.send((generation, began.elapsed(), tries)).is_err() {
            return;
        }
        loop {
            tokio::select! {
                message = client::next_json(&mut socket) => match message {
                    Some(message) => {
                        if let Some(t) = message["meta"]["resumeToken"].as_str() {
                            token = Some(t.to_owned());
                        }
                    }
                    None => break,
                },
                changed = cuts.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        drop(socket);
        // The first retry after a lost socket, as the client schedules it.
        tokio::time::sleep(backoff.delay(1, rng.random())).await;
    }
}

/// Opens a socket, subscribes, and waits for the pong that shows the subscription was taken.
async fn connect_and_subscribe(addr: &str, cookie: &str, n: usize, token: Option<String>) -> anyhow::Result<Socket> {
    let mut socket = client::open(addr, cookie, client::source(n)).await?;
    let welcome = client::next_json(&mut socket).await.unwrap_or_default();
    anyhow::ensure!(welcome["type"] == "welcome", "refused: {welcome}");
    client::send(&mut socket, &client::subscribe("w", TOPIC, token)).await?;
    client::send(&mut socket, &ClientMessage::Ping).await?;
    loop {
        let message = client::next_json(&mut socket).await.ok_or_else(|| anyhow::anyhow!("closed"))?;
        if message["type"] == "pong" {
            return Ok(socket);
        }
    }
}

/// Signs in every 100 ms until told to stop; the latencies.
async fn probe_logins(addr: String, mut stop: watch::Receiver<bool>) -> Samples {
    let http = reqwest::Client::new();
    let mut took = Vec::new();
    while !*stop.borrow() {
        let began = Instant::now();
        match client::login(&http, &addr, "viewer@acme.test").await {
            Ok(_) => took.push(began.elapsed()),
            Err(e) => eprintln!("sign-in failed during the storm: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.changed() => {}
        }
    }
    Samples::new(took)
}
