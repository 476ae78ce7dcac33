//! Two nodes over one Redis against one node alone. N viewers follow one topic published at R
//! messages a second through the HTTP API: first on one node (the in-memory engine, the default),
//! then with the publisher on node A and every viewer on node B, both over a Redis of their own on
//! a free loopback port. Prints each run's publish→receive latency, the nodes' CPU, and the ratio of
//! the p99s.

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

pub async fn run(bin: &str, clients: usize, rate: u32, secs: u64) -> anyhow::Result<()> {
    let one = Server::start(bin, &hostile::settings(clients)).await.context("the single node")?;
    let (alone, cpu) = measure(&one, &one, clients, rate, secs).await?;
    println!("one node, {clients} viewers × {rate} msg/s for {secs} s: {}", alone.summary());
    println!("  server CPU {:.2} s", cpu[0].as_secs_f64());
    drop(one);

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
    let (across, cpu) = measure(&a, &b, clients, rate, secs).await?;
    println!("two nodes over Redis, published on A, viewed on B: {}", across.summary());
    println!("  CPU: node A {:.2} s, node B {:.2} s", cpu[0].as_secs_f64(), cpu[1].as_secs_f64());
    let ratio = across.percentile(99.0).as_secs_f64() / alone.percentile(99.0).as_secs_f64().max(1e-9);
    println!("p99 across two nodes / p99 on one node: {ratio:.2}");
    Ok(())
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
