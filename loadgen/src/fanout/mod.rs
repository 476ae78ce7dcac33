//! The fan-out benchmark: N clients following T topics, a publisher at R messages a second per topic
//! through the publish API, each message carrying its send time, against livedash (over WebSockets,
//! and over SSE: one stream per client of a dashboard showing the T topics) and against two servers
//! that do only the fan-out over WebSockets (`baseline_axum`, and Node.js with `ws`), one after the
//! other in one run, each load on a server of its own (so memory per socket starts from a clean
//! process).
//!
//! For each server and load it prints connect time, publish→receive latency, publish API latency,
//! deliveries a second, messages lost or repeated (every offset of every client is checked), and the
//! server's CPU and memory from /proc: at start, with the clients connected and idle, at its peak and
//! after they left. The generator's own CPU is printed beside it: both share the machine's cores.
//!
//! The CPU figure to compare is the **marginal CPU a delivery**: the server's CPU over the publishing
//! window (from one second in, once the pipeline is full, to the last publish), minus what the same
//! server spent idle with the same clients over as long, divided by the deliveries the clients
//! counted in that window. Set-up, the idle sockets' own cost and the drain after the last publish
//! are left out, as a deployment that publishes all day would not see them per message.
//!
//! `--repeat N` runs everything N times, in rounds (each round every load, each load every target one
//! after the other, so a round's servers share the machine's mood), and gives every figure as the
//! median with its range; `--budget FILE` then checks livedash against the axum baseline of the same
//! round ([`spread`]).

mod report;
mod spread;

use crate::{
    client, hostile,
    scan::{self, Kind},
    server::{self, Server, Usage},
    sse::{self, SseClient},
    stats::Samples,
    tally::{self, Tally},
    wire::{self, Frame, WsClient},
};
use anyhow::{Context, bail};
use protocol::ClientMessage;
use report::{Figures, Window, print_figures, print_table};
use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::{Semaphore, watch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Livedash,
    /// livedash's Server-Sent Events stream of a dashboard.
    LivedashSse,
    Axum,
    Node,
    /// livedash from another binary (`--before-bin`): an earlier build to compare with, round by
    /// round, on the same machine.
    LivedashBefore,
}

impl Target {
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "livedash" => Ok(Self::Livedash),
            "livedash-sse" => Ok(Self::LivedashSse),
            "axum" => Ok(Self::Axum),
            "node" => Ok(Self::Node),
            "livedash-before" => Ok(Self::LivedashBefore),
            other => bail!("unknown target {other:?}: livedash, livedash-sse, axum, node or livedash-before"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Livedash => "livedash",
            Self::LivedashSse => "livedash SSE",
            Self::Axum => "axum broadcast",
            Self::Node => "Node.js + ws",
            Self::LivedashBefore => "livedash before",
        }
    }

    fn is_livedash(self) -> bool {
        matches!(self, Self::Livedash | Self::LivedashSse | Self::LivedashBefore)
    }
}

/// `1000x100`: 1,000 clients, 100 messages a second on each topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub clients: usize,
    pub rate: u32,
}

impl Load {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (clients, rate) = text.split_once('x').with_context(|| format!("load {text:?}: CLIENTSxRATE"))?;
        let load = Self {
            clients: clients.trim().parse().with_context(|| format!("load {text:?}: clients"))?,
            rate: rate.trim().parse().with_context(|| format!("load {text:?}: rate"))?,
        };
        anyhow::ensure!(load.clients > 0 && load.rate > 0, "load {text:?}: both must be above 0");
        Ok(load)
    }
}

/// Where the clients connect from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    /// Each from a loopback address of its own (127.1.x.y), as users of a deployment would.
    Many,
    /// All from 127.0.0.1, as one test machine would (livedash's per-address connect limit is raised).
    One,
}

impl Sources {
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "many" => Ok(Self::Many),
            "one" => Ok(Self::One),
            other => bail!("unknown --from {other:?}: many or one"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Many => "an address per client",
            Self::One => "one address",
        }
    }

    fn address(self, n: usize) -> IpAddr {
        match self {
            Self::Many => client::source(n),
            Self::One => IpAddr::from([127, 0, 0, 1]),
        }
    }
}

/// What a client does with each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Finds the offset and send time with a few substring searches: the cheapest reader.
    Scan,
    /// Also parses the whole message as JSON, as the browser's page does with every one.
    Parse,
}

impl Reading {
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "scan" => Ok(Self::Scan),
            "parse" => Ok(Self::Parse),
            other => bail!("unknown --read {other:?}: scan or parse"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub loads: Vec<Load>,
    pub topics: usize,
    /// Points in each message (the first carries the send time).
    pub points: usize,
    pub secs: u64,
    /// Rounds of every load and target.
    pub repeat: usize,
    pub sources: Vec<Sources>,
    pub reading: Reading,
    /// A budget file to check livedash's CPU a delivery against the axum baseline's.
    pub budget: Option<PathBuf>,
    /// The livedash binary.
    pub bin: String,
    /// The binary of the `livedash-before` target.
    pub before_bin: Option<String>,
}

/// One server under one load in one round.
pub(super) struct Run {
    round: usize,
    sources: Sources,
    target: Target,
    load: Load,
    figures: Figures,
}

/// Publishes in flight at once: enough that a slow answer does not slow the rate, few enough that
/// a saturated server sees back-pressure.
const PUBLISHES_IN_FLIGHT: usize = 64;
/// Clients connecting at once.
const CONNECTING_AT_ONCE: usize = 64;
/// How long a client may take to connect and have its subscriptions answered.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long clients may take to receive the last message after the publisher stopped.
const DRAIN: Duration = Duration::from_secs(30);
/// How long the idle server's CPU is read for, with every client connected and subscribed.
const IDLE_SAMPLE: Duration = Duration::from_secs(2);
/// The start of publishing left out of the CPU window: connections' first writes, the pipeline
/// filling up.
const WARM_UP: Duration = Duration::from_secs(1);

pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let budgets = match &plan.budget {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let budgets = spread::parse_budgets(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            anyhow::ensure!(
                plan.targets.contains(&Target::Livedash) && plan.targets.contains(&Target::Axum),
                "--budget compares livedash with axum: both must be among --targets"
            );
            Some(budgets)
        }
        None => None,
    };
    anyhow::ensure!(
        plan.targets.contains(&Target::LivedashBefore) == plan.before_bin.is_some(),
        "the livedash-before target and --before-bin go together"
    );
    let mut runs = Vec::new();
    for round in 1..=plan.repeat {
        for &sources in &plan.sources {
            for &load in &plan.loads {
                for &target in &plan.targets {
                    let server = start(target, plan, load.clients)
                        .await
                        .with_context(|| format!("starting {}", target.label()))?;
                    let figures = measure(&server, target, load, sources, plan).await.with_context(|| {
                        format!("{} under {} clients × {} msg/s", target.label(), load.clients, load.rate)
                    })?;
                    drop(server);
                    let run = Run { round, sources, target, load, figures };
                    print_figures(&run, plan);
                    runs.push(run);
                }
            }
        }
    }
    print_table(plan, &runs);
    if let Some(budgets) = budgets {
        let mut verdicts = report::check(&budgets, &runs, Target::Axum);
        if plan.targets.contains(&Target::LivedashBefore) {
            // Against an earlier build of itself the budget is level (1.0), within the same noise:
            // a check that does not depend on how this machine treats the baseline.
            let level: Vec<_> = budgets.iter().map(|b| spread::Budget { ratio: 1.0, ..b.clone() }).collect();
            verdicts.extend(report::check(&level, &runs, Target::LivedashBefore));
        }
        println!();
        for verdict in &verdicts {
            println!("{}", verdict.line());
        }
        let failed = verdicts.iter().filter(|v| !v.pass()).count();
        anyhow::ensure!(failed == 0, "{failed} of {} CPU budgets exceeded", verdicts.len());
    }
    Ok(())
}

/// The hostile bench's settings (one user holds every socket, one key publishes fast) and room for
/// that many connections: limits raised, not removed; every other check stays on.
fn livedash_settings(clients: usize) -> Vec<(&'static str, String)> {
    let mut settings = hostile::settings(clients);
    settings.push(("LIVEDASH_MAX_HTTP_CONNECTIONS", (2 * clients + 200).to_string()));
    // `--from one`: every client connects from 127.0.0.1 within the minute.
    settings.push(("LIVEDASH_CONNECT_ATTEMPTS_PER_MIN", (2 * clients + 200).to_string()));
    settings
}

async fn start(target: Target, plan: &Plan, clients: usize) -> anyhow::Result<Server> {
    match target {
        Target::Livedash | Target::LivedashSse => Server::start(&plan.bin, &livedash_settings(clients)).await,
        Target::LivedashBefore => {
            let bin = plan.before_bin.as_deref().context("livedash-before needs --before-bin")?;
            Server::start(bin, &livedash_settings(clients)).await
        }
        Target::Axum => Server::start_baseline(&std::env::current_exe()?, &["baseline-axum"]).await,
        Target::Node => {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("baselines/ws-broadcast.mjs");
            Server::start_baseline("node".as_ref(), &[&script.to_string_lossy()]).await
        }
    }
}

/// A moment of the run: the server's CPU so far and the deliveries counted so far.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    cpu: Duration,
    delivered: u64,
}

impl Mark {
    fn now(server: &Server, delivered: &AtomicU64) -> Self {
        Self { at: Instant::now(), cpu: server.usage().cpu, delivered: delivered.load(Ordering::Relaxed) }
    }
}

async fn measure(
    server: &Server,
    target: Target,
    load: Load,
    sources: Sources,
    plan: &Plan,
) -> anyhow::Result<Figures> {
    let http = reqwest::Client::new();
    let epoch = Instant::now();
    let publisher = Publisher::new(server, plan.topics, plan.points, epoch);
    // livedash sends a snapshot on subscribing to a topic that exists: create them first.
    let mut created = vec![0; plan.topics];
    if target.is_livedash() {
        for (topic, offset) in created.iter_mut().enumerate() {
            *offset = publisher.publish(&http, topic).await?.1;
        }
    }
    let cookie = match target.is_livedash() {
        true => Some(Arc::new(client::login(&http, &server.addr, "ops@acme.test").await?)),
        false => None,
    };
    let stream_path = match (target, &cookie) {
        (Target::LivedashSse, Some(cookie)) => {
            Some(Arc::new(bench_dashboard(&http, server, cookie, plan.topics).await?))
        }
        _ => None,
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_start = settled_rss(server).await;

    let addr: SocketAddr = server.addr.parse()?;
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut opening = Vec::with_capacity(load.clients);
    for n in 0..load.clients {
        let (connecting, cookie, stream_path) = (connecting.clone(), cookie.clone(), stream_path.clone());
        let topics = plan.topics;
        opening.push(tokio::spawn(async move {
            let _permit = connecting.acquire_owned().await.expect("never closed");
            let cookie = cookie.as_deref().map(String::as_str);
            let opened = async {
                let from = sources.address(n);
                match (stream_path, cookie) {
                    (Some(path), Some(cookie)) => open_stream(addr, from, cookie, &path, topics).await,
                    _ => open(addr, from, cookie, topics).await,
                }
            };
            tokio::time::timeout(OPEN_TIMEOUT, opened)
                .await
                .context("no answer to the connection or its subscriptions")?
        }));
    }
    let mut viewers = Vec::with_capacity(load.clients);
    let mut connects = Vec::with_capacity(load.clients);
    for opened in opening {
        let (viewer, connect) = opened.await?.context("a client could not subscribe")?;
        viewers.push(viewer);
        connects.push(connect);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What the server spends with every client connected and nothing published (pings, timers, a
    // demo feed): taken out of the publishing window's CPU.
    let (idle_from, idle_cpu_from) = (Instant::now(), server.usage().cpu);
    tokio::time::sleep(IDLE_SAMPLE).await;
    let idle_cpu_rate =
        server.usage().cpu.saturating_sub(idle_cpu_from).as_secs_f64() / idle_from.elapsed().as_secs_f64();
    let rss_idle = server.usage().rss_bytes;

    let starts: Vec<Vec<u64>> = viewers.iter().map(|(_, last)| last.clone()).collect();
    let (finals_tx, finals) = watch::channel(None::<Arc<Vec<u64>>>);
    let delivered = Arc::new(AtomicU64::new(0));
    let before = (server.usage(), server::own_usage());
    let sampler = server::Sampler::start(server);
    let readers: Vec<_> = viewers
        .into_iter()
        .map(|(viewer, last)| {
            let reader =
                Reader { tally: Tally::starting_at(last), epoch, reading: plan.reading, delivered: delivered.clone() };
            tokio::spawn(reader.read(viewer, finals.clone()))
        })
        .collect();
    let started_us = epoch.elapsed().as_micros() as u64;
    let secs = Duration::from_secs(plan.secs);
    let publishing = tokio::spawn({
        let (publisher, http, rate) = (publisher.clone(), http.clone(), load.rate);
        async move { publisher.run(&http, rate, secs).await }
    });
    // A run too short for a warm-up is measured whole.
    let warm_up = if secs > 2 * WARM_UP { WARM_UP } else { Duration::ZERO };
    tokio::time::sleep(warm_up).await;
    let window_from = Mark::now(server, &delivered);
    let sent = publishing.await?;
    let window_to = Mark::now(server, &delivered);
    let mut last_offsets = created;
    for (topic, offset) in &sent.offsets {
        last_offsets[*topic] = last_offsets[*topic].max(*offset);
    }
    // Every reader is told to stop only once every update is in: told at once, thousands of readers
    // wake and close their sockets while the last message is still going out, and that message's
    // latency (at 10,000 clients a whole percent of the samples: the p99) measured the generator's
    // teardown instead of the server (300–400 ms against 65–90 for every other message).
    let owed = tally::owed(starts.iter().map(Vec::as_slice), &last_offsets);
    let _ = tokio::time::timeout(DRAIN, async {
        while delivered.load(Ordering::Relaxed) < owed {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    finals_tx.send_replace(Some(Arc::new(last_offsets.clone())));
    let mut tallies = Vec::with_capacity(readers.len());
    for reader in readers {
        let mut tally = reader.await?;
        tally.close(&last_offsets);
        tallies.push(tally);
    }
    let after = (server.usage(), server::own_usage());
    let (_, rss_peak) = sampler.peaks();
    drop(sampler);
    let rss_after = settled_rss(server).await;

    let deliveries: u64 = tallies.iter().map(|t| t.deliveries).sum();
    let last_at = tallies.iter().map(|t| t.last_at_us).max().unwrap_or(started_us);
    let span = Duration::from_micros(last_at.saturating_sub(started_us)).as_secs_f64().max(1e-3);
    let latency = Samples::new(
        tallies.iter().flat_map(|t| t.latencies_us.iter().map(|us| Duration::from_micros(u64::from(*us)))).collect(),
    );
    Ok(Figures {
        connect: Samples::new(connects),
        latency,
        publish: Samples::new(sent.latencies),
        published: sent.offsets.len() as u64,
        publish_rate: sent.offsets.len() as f64 / sent.elapsed.as_secs_f64().max(1e-3),
        deliveries,
        per_sec: deliveries as f64 / span,
        message_bytes: tallies.iter().map(|t| t.bytes).sum::<u64>() as f64 / deliveries.max(1) as f64,
        lost: tallies.iter().map(|t| t.lost).sum(),
        failed_publishes: sent.failed,
        repeated: tallies.iter().map(|t| t.repeated).sum(),
        gaps: tallies.iter().map(|t| t.gaps).sum(),
        cpu: cpu_between(before.0, after.0),
        window: Window {
            secs: (window_to.at - window_from.at).as_secs_f64(),
            cpu: window_to.cpu.saturating_sub(window_from.cpu),
            deliveries: window_to.delivered - window_from.delivered,
            idle_cpu_rate,
        },
        generator_cpu: cpu_between(before.1, after.1),
        rss_start,
        rss_idle,
        rss_peak,
        rss_after,
    })
}

fn cpu_between(before: Usage, after: Usage) -> Duration {
    after.cpu.saturating_sub(before.cpu)
}

/// The server's RSS once it has stopped falling for a while (a server gives freed memory back
/// some seconds after sockets close: livedash checks every 5 s), at most 30 s.
async fn settled_rss(server: &Server) -> u64 {
    const STILL_FOR: Duration = Duration::from_secs(7);
    let started = Instant::now();
    let mut lowest = server.usage().rss_bytes;
    let mut fell_at = Instant::now();
    while fell_at.elapsed() < STILL_FOR && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = server.usage().rss_bytes;
        if now + 64 * 1024 < lowest {
            fell_at = Instant::now();
        }
        lowest = lowest.min(now);
    }
    lowest
}

/// A client: connected (livedash: welcomed), subscribed to every topic, and the offset each
/// subscription starts at; with the time the connection took (TCP connect to upgraded, and for
/// livedash to its welcome).
async fn open(
    addr: SocketAddr,
    from: IpAddr,
    cookie: Option<&str>,
    topics: usize,
) -> anyhow::Result<((Viewer, Vec<u64>), Duration)> {
    let started = Instant::now();
    let origin = format!("http://{addr}");
    let mut ws = wire::connect(addr, from, "/api/ws", cookie, Some(&origin)).await?;
    if cookie.is_some() {
        match ws.next().await? {
            Frame::Text(text) if text.starts_with(br#"{"type":"welcome""#) => {}
            Frame::Text(text) => bail!("expected a welcome, got {}", String::from_utf8_lossy(text)),
            Frame::Closed => bail!("closed before its welcome"),
        }
    }
    let connect = started.elapsed();
    for topic in 0..topics {
        let subscribe = ClientMessage::Subscribe {
            widget_id: format!("w{topic}"),
            topic: tally::topic_name(topic),
            resume_token: None,
        };
        ws.send_text(&subscribe.to_json()).await?;
    }
    let mut starts = vec![None; topics];
    while starts.iter().any(Option::is_none) {
        let Frame::Text(text) = ws.next().await? else { bail!("closed before its subscriptions started") };
        let seen = scan::scan(text);
        match (seen.kind, seen.topic.and_then(tally::topic_index), seen.offset) {
            (Kind::Start, Some(topic), Some(offset)) if topic < topics => starts[topic] = Some(offset),
            (Kind::Other, ..) if text.starts_with(br#"{"type":"error""#) => {
                bail!("subscribing failed: {}", String::from_utf8_lossy(text))
            }
            _ => {}
        }
    }
    Ok(((Viewer::Ws(ws), starts.into_iter().map(|s| s.unwrap_or_default()).collect()), connect))
}

/// A dashboard with one line chart per bench topic, for the SSE clients; its stream's path.
async fn bench_dashboard(
    http: &reqwest::Client,
    server: &Server,
    cookie: &str,
    topics: usize,
) -> anyhow::Result<String> {
    let created: serde_json::Value = http
        .post(server.url("/api/dashboards"))
        .header("origin", server.url(""))
        .header("cookie", cookie)
        .json(&serde_json::json!({"title": "Fan-out bench"}))
        .send()
        .await?
        .error_for_status()
        .context("creating the bench dashboard")?
        .json()
        .await?;
    let id = created["id"].as_i64().context("no dashboard id")?;
    for topic in 0..topics {
        http.post(server.url(&format!("/api/dashboards/{id}/widgets")))
            .header("origin", server.url(""))
            .header("cookie", cookie)
            .json(&serde_json::json!({"title": format!("Topic {topic}"), "kind": "line_chart", "topic": tally::topic_name(topic)}))
            .send()
            .await?
            .error_for_status()
            .context("adding a bench widget")?;
    }
    Ok(format!("/api/stream/dashboard/{id}"))
}

/// An SSE client of the bench dashboard, once it has every bench topic's snapshot.
async fn open_stream(
    addr: SocketAddr,
    from: IpAddr,
    cookie: &str,
    path: &str,
    topics: usize,
) -> anyhow::Result<((Viewer, Vec<u64>), Duration)> {
    let started = Instant::now();
    let mut stream = sse::connect(addr, from, path, cookie).await?;
    let connect = started.elapsed();
    let mut starts = vec![None; topics];
    while starts.iter().any(Option::is_none) {
        let Some(event) = stream.next().await? else { bail!("the stream ended before its snapshots") };
        let seen = scan::scan(event.data);
        if let (Kind::Start, Some(topic), Some(offset)) =
            (seen.kind, seen.topic.and_then(tally::topic_index), seen.offset)
            && topic < topics
        {
            starts[topic] = Some(offset);
        }
    }
    Ok(((Viewer::Sse(stream), starts.into_iter().map(|s| s.unwrap_or_default()).collect()), connect))
}

/// One client, over either transport.
enum Viewer {
    Ws(WsClient),
    Sse(SseClient),
}

impl Viewer {
    /// The next message's text (an event's data), or `None` once the server closed.
    async fn next(&mut self) -> anyhow::Result<Option<&[u8]>> {
        match self {
            Viewer::Ws(ws) => match ws.next().await? {
                Frame::Text(text) => Ok(Some(text)),
                Frame::Closed => Ok(None),
            },
            Viewer::Sse(stream) => Ok(stream.next().await?.map(|event| event.data)),
        }
    }
}

/// One client's reading: its account, and the run's shared count of deliveries (read at the edges
/// of the CPU window).
struct Reader {
    tally: Tally,
    epoch: Instant,
    reading: Reading,
    delivered: Arc<AtomicU64>,
}

impl Reader {
    /// Reads until this client has the last published offset of every topic, the server closes, or
    /// the drain time after publishing ends runs out.
    async fn read(mut self, mut viewer: Viewer, mut finals: watch::Receiver<Option<Arc<Vec<u64>>>>) -> Tally {
        let mut deadline = None;
        loop {
            if let Some(last) = finals.borrow().clone() {
                if self.tally.caught_up(&last) {
                    return self.tally;
                }
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + DRAIN);
            }
            let drained = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = viewer.next() => match message {
                    Ok(Some(text)) => {
                        let now = self.epoch.elapsed().as_micros() as u64;
                        if self.reading == Reading::Parse {
                            std::hint::black_box(serde_json::from_slice::<serde_json::Value>(text).ok());
                        }
                        let before = self.tally.deliveries;
                        self.tally.record(&scan::scan(text), text.len(), now);
                        self.delivered.fetch_add(self.tally.deliveries - before, Ordering::Relaxed);
                    }
                    Ok(None) | Err(_) => return self.tally,
                },
                _ = finals.changed() => {}
                () = drained => return self.tally,
            }
        }
    }
}

/// What the publisher sent: each publish's answer time and offset.
struct Sent {
    latencies: Vec<Duration>,
    offsets: Vec<(usize, u64)>,
    failed: u64,
    elapsed: Duration,
}

#[derive(Clone)]
struct Publisher {
    urls: Arc<Vec<String>>,
    key: Arc<String>,
    points: usize,
    epoch: Instant,
}

impl Publisher {
    fn new(server: &Server, topics: usize, points: usize, epoch: Instant) -> Self {
        let urls = (0..topics).map(|t| server.url(&format!("/api/v1/publish/{}", tally::topic_name(t)))).collect();
        Self { urls: Arc::new(urls), key: Arc::new(server.api_key.clone()), points: points.max(1), epoch }
    }

    /// One message to `topic`, sent now; its answer time and offset.
    async fn publish(&self, http: &reqwest::Client, topic: usize) -> anyhow::Result<(Duration, u64)> {
        let sent = self.epoch.elapsed().as_micros();
        let mut body = format!(r#"{{"points":[{{"value":{sent}}}"#);
        for _ in 1..self.points {
            body.push_str(r#",{"value":0}"#);
        }
        body.push_str("]}");
        let started = Instant::now();
        let response = http.post(&self.urls[topic]).bearer_auth(&*self.key).body(body).send().await?;
        let status = response.status();
        let answer = response.bytes().await?;
        if !status.is_success() {
            bail!("publish answered {status}: {}", String::from_utf8_lossy(&answer));
        }
        let offset = scan::published_offset(&answer).context("no offset in the publish answer")?;
        Ok((started.elapsed(), offset))
    }

    /// Publishes `rate` messages a second to each topic, in turn, for `secs`.
    async fn run(&self, http: &reqwest::Client, rate: u32, secs: Duration) -> Sent {
        let topics = self.urls.len();
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / (f64::from(rate) * topics as f64)));
        let in_flight = Arc::new(Semaphore::new(PUBLISHES_IN_FLIGHT));
        let started = Instant::now();
        let mut tasks = Vec::new();
        let mut topic = 0;
        while started.elapsed() < secs {
            ticks.tick().await;
            let permit = in_flight.clone().acquire_owned().await.expect("never closed");
            let (publisher, http) = (self.clone(), http.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                (topic, publisher.publish(&http, topic).await)
            }));
            topic = (topic + 1) % topics;
        }
        let mut sent = Sent { latencies: Vec::new(), offsets: Vec::new(), failed: 0, elapsed: Duration::ZERO };
        for task in tasks {
            match task.await {
                Ok((topic, Ok((latency, offset)))) => {
                    sent.latencies.push(latency);
                    sent.offsets.push((topic, offset));
                }
                Ok((_, Err(e))) => {
                    eprintln!("publish failed: {e:#}");
                    sent.failed += 1;
                }
                Err(e) => {
                    eprintln!("publish task failed: {e}");
                    sent.failed += 1;
                }
            }
        }
        sent.elapsed = started.elapsed();
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_targets_parse() {
        assert_eq!(Load::parse("1000x100").unwrap(), Load { clients: 1000, rate: 100 });
        assert!(Load::parse("1000").is_err());
        assert!(Load::parse("0x5").is_err());
        assert_eq!(Target::parse("node").unwrap(), Target::Node);
        assert_eq!(Target::parse("livedash-sse").unwrap(), Target::LivedashSse);
        assert!(Target::parse("nginx").is_err());
    }
}
