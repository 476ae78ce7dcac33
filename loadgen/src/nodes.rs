//! Two nodes over one Redis against one node alone. N viewers follow one topic published at R
//! messages a second through the HTTP API: on one node (the in-memory engine, the default), and
//! with the publisher on node A and every viewer on node B, both over a Redis of their own on a free
//! loopback port. The two take turns for a number of rounds. Prints each run's publish→receive p99
//! and the nodes' CPU, the latencies over all rounds, and the ratio of the p99s.

use crate::{
    client,
    hostile::{self, TOPIC},
    server::Server,
    stats::Samples,
};
use anyhow::Context;
use std::{
    net::TcpStream,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{process::Command, sync::watch};

pub async fn run(bin: &str, clients: usize, rate: u32, secs: u64, rounds: usize) -> anyhow::Result<()> {
    let one = Server::start(bin, &hostile::settings(clients)).await.context("the single node")?;
    let redis = RedisProcess::start().await?;
    let secret = format!("{:032x}", rand::random::<u128>());
    let mut shared = hostile::settings(clients);
    shared.push(("LIVEDASH_REDIS_URL", redis.url()));
    shared.push(("LIVEDASH_SESSION_SECRET", secret));
    let a = Server::start(bin, &shared).await.context("node A")?;
    let mut second = shared.clone();
    second.push(("LIVEDASH_DEMO", "off".into()));
    second.push(("LIVEDASH_DATABASE", a.database.to_string_lossy().into_owned()));
    let b = Server::start(bin, &second).await.context("node B")?;

    // The two set-ups take turns, each round in the other order, so a change in what else the
    // machine does falls on both alike; the ratio is then read per round and over all of them.
    println!(
        "{clients} viewers × {rate} msg/s, {secs} s a run, {rounds} rounds (one node alone; two nodes over Redis, published on A, viewed on B)"
    );
    let (mut alone_runs, mut across_runs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (alone, across) = if round % 2 == 1 {
            let alone = measure(&one, &one, clients, rate, secs).await?;
            (alone, measure(&a, &b, clients, rate, secs).await?)
        } else {
            let across = measure(&a, &b, clients, rate, secs).await?;
            (measure(&one, &one, clients, rate, secs).await?, across)
        };
        let ratio = p99_ms(&across.0) / p99_ms(&alone.0).max(1e-6);
        println!(
            "round {round}: one node p99 {:.1} ms (CPU {:.2} s) | two nodes p99 {:.1} ms (CPU A {:.2} s, B {:.2} s) | ratio {ratio:.2}",
            p99_ms(&alone.0),
            alone.1[0].as_secs_f64(),
            p99_ms(&across.0),
            across.1[0].as_secs_f64(),
            across.1[1].as_secs_f64(),
        );
        ratios.push(ratio);
        alone_runs.push(alone.0);
        across_runs.push(across.0);
    }
    let (alone, across) = (Samples::pooled(alone_runs), Samples::pooled(across_runs));
    println!("one node, all rounds: {}", alone.summary());
    println!("two nodes, all rounds: {}", across.summary());
    ratios.sort_by(f64::total_cmp);
    println!(
        "p99 ratio (two nodes / one): median of rounds {:.2} (range {:.2} to {:.2}), over all samples {:.2}",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
        p99_ms(&across) / p99_ms(&alone).max(1e-6),
    );
    Ok(())
}

fn p99_ms(samples: &Samples) -> f64 {
    samples.percentile(99.0).as_secs_f64() * 1000.0
}

/// Viewers on `viewed`, the publisher on `published`; the latencies of the measured `secs` and the
/// CPU each server spent in them.
async fn measure(
    published: &Server,
    viewed: &Server,
    clients: usize,
    rate: u32,
    secs: u64,
) -> anyhow::Result<(Samples, [Duration; 2])> {
    let http = reqwest::Client::new();
    let cookie = client::login(&http, &viewed.addr, "ops@acme.test").await?;
    let epoch = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = watch::channel(false);
    let viewers = hostile::follow(&viewed.addr, &cookie, clients, epoch, &samples, &stopped).await?;
    let url = published.url(&format!("/api/v1/publish/{TOPIC}"));
    let publisher = tokio::spawn(hostile::publish(url, published.api_key.clone(), rate, epoch, stopped));
    tokio::time::sleep(Duration::from_secs(1)).await; // every viewer has its snapshot
    samples.lock().expect("samples").clear();
    let before = [published.usage().cpu, viewed.usage().cpu];
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let measured = Samples::new(std::mem::take(&mut *samples.lock().expect("samples")));
    let cpu = [published.usage().cpu - before[0], viewed.usage().cpu - before[1]];
    stop.send_replace(true);
    let _ = publisher.await;
    for viewer in viewers {
        viewer.abort();
    }
    Ok((measured, cpu))
}

/// A `redis-server` of the run's own (Debian's package), keeping nothing on disk.
struct RedisProcess {
    port: u16,
    _child: tokio::process::Child,
}

impl RedisProcess {
    async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (apt-get install redis-server)")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "redis-server did not open port {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { port, _child: child })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}
