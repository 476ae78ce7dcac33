//! `loadgen targets`: the product's success figures on the server's side, measured from outside and
//! checked against their targets, one `PASS` or `FAIL` line each (`scripts/bench targets` runs this
//! and the browser's share, `end2end/bench/targets.spec.ts`). The only place these targets are
//! checked: the test suite never times anything.
//!
//! 1,000 WebSocket clients (by default) arrive over two seconds, each following a topic of its own
//! dashboard and the notification centre's topic. For ten seconds the publisher sends 10 points a
//! second (each stamped with the time it was sent) and 5 notifications a second through the HTTP
//! API. Measured: how many clients got in (and the server's `livedash_connect_attempts_total`), how
//! long each took from its TCP connect to its first snapshot, publish → client latency of every
//! point at every client, and how many of the notifications reached every client (and the server's
//! `livedash_event_deliveries_total`).

use crate::{
    client::{self, Socket},
    server::Server,
    stats::Samples,
};
use protocol::ClientMessage;
use std::{
    collections::HashSet,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, watch};

/// The topic the clients' chart follows.
const TOPIC: &str = "bench/targets";
/// Notifications the publisher sends are told apart from the demo feed's by this id prefix.
const ID_PREFIX: &str = "bench-target-";
/// How long the clients take to arrive, evenly spread.
const ARRIVAL: Duration = Duration::from_secs(2);
/// How long a client may take to get in before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const POINTS_PER_SEC: u64 = 10;
const NOTIFICATIONS_PER_SEC: u64 = 5;

/// One target: the figure measured, what it must be, and whether it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub name: String,
    pub figure: String,
    pub target: String,
    pub pass: bool,
}

impl Verdict {
    /// `PASS connect p95 (1000 clients): 84 ms (target < 1000 ms)`.
    pub fn line(&self) -> String {
        let word = if self.pass { "PASS" } else { "FAIL" };
        format!("{word} {}: {} (target {})", self.name, self.figure, self.target)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn below(name: String, measured: Duration, limit: Duration) -> Verdict {
    Verdict { name, figure: ms(measured), target: format!("< {}", ms(limit)), pass: measured < limit }
}

/// A rate `got / of` against a floor in per cent; no sample at all fails.
fn rate(name: String, got: f64, of: f64, floor: f64) -> Verdict {
    let percent = if of > 0.0 { 100.0 * got / of } else { 0.0 };
    Verdict {
        name,
        figure: format!("{percent:.2} % ({got:.0} of {of:.0})"),
        target: format!("> {floor} %"),
        pass: of > 0.0 && percent > floor,
    }
}

/// What the run measured, ready to be judged.
#[derive(Debug, Default)]
pub struct Figures {
    pub clients: usize,
    pub connected: usize,
    pub connect: Samples,
    pub latency: Samples,
    /// Notifications sent, and received summed over connected clients.
    pub notifications_sent: u64,
    pub notifications_received: u64,
    /// The server's counters: connection attempts ok and failed; live event messages queued,
    /// withdrawn (their subscriber left first) and delivered.
    pub server_attempts: (f64, f64),
    pub server_events: (f64, f64, f64),
}

/// The figures against the product's targets.
pub fn judge(f: &Figures) -> Vec<Verdict> {
    let n = f.clients;
    let (ok, failed) = f.server_attempts;
    let (queued, withdrawn, delivered) = f.server_events;
    let expected = f.notifications_sent as f64 * f.connected as f64;
    vec![
        rate(format!("connection success rate ({n} clients)"), f.connected as f64, n as f64, 99.0),
        rate("connection success rate (server: ok / (ok + failed))".into(), ok, ok + failed, 99.0),
        below(format!("connect p95 ({n} clients)"), f.connect.percentile(95.0), Duration::from_secs(1)),
        below(format!("update latency median ({n} clients)"), f.latency.percentile(50.0), Duration::from_millis(200)),
        below(format!("update latency p95 ({n} clients)"), f.latency.percentile(95.0), Duration::from_millis(500)),
        rate(format!("notification delivery rate ({n} clients)"), f.notifications_received as f64, expected, 99.5),
        rate("notification delivery rate (server: delivered / queued)".into(), delivered, queued - withdrawn, 99.5),
    ]
}

/// Settings the run needs beyond the defaults: one user holds every socket, from loopback
/// addresses, and the publisher may publish faster than an API key usually does.
pub fn settings(clients: usize) -> Vec<(&'static str, String)> {
    vec![
        ("LIVEDASH_MAX_CONNECTIONS_PER_USER", (2 * clients).to_string()),
        ("LIVEDASH_LOGINS_PER_MIN_PER_ADDRESS", "100000".into()),
        ("LIVEDASH_MAX_HTTP_CONNECTIONS", (3 * clients).to_string()),
        ("LIVEDASH_PUBLISHES_PER_SEC", "1000".into()),
    ]
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// What one client saw.
#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<Duration>,
    notifications: HashSet<String>,
}

pub async fn run(server: &Server, clients: usize, secs: u64) -> anyhow::Result<Vec<Verdict>> {
    anyhow::ensure!(clients > 0 && secs > 0, "--clients and --secs must be above 0");
    let http = reqwest::Client::new();
    publish(&http, server, TOPIC, serde_json::json!({"points": [{"ts": now_ms(), "value": 0}]})).await?;
    let before = server_figures(server).await;
    let cookie = client::login(&http, &server.addr, "ops@acme.test").await?;
    let (stop, stopped) = watch::channel(false);
    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel::<Option<Duration>>();
    let mut tasks = Vec::with_capacity(clients);
    for n in 0..clients {
        let (addr, cookie, stopped, connected) =
            (server.addr.clone(), cookie.clone(), stopped.clone(), connected_tx.clone());
        let arrive = ARRIVAL.mul_f64(n as f64 / clients as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(arrive).await;
            watch_as_a_page(n, &addr, &cookie, stopped, connected).await
        }));
    }
    drop(connected_tx);
    let mut connect = Vec::new();
    for _ in 0..clients {
        if let Some(Some(took)) = connected_rx.recv().await {
            connect.push(took);
        }
    }
    let connected = connect.len();
    println!("{connected} of {clients} clients in; publishing for {secs} s");

    let sent = publish_for(&http, server, secs).await?;
    // What is in flight arrives; then the clients stop and hand in what they saw.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send_replace(true);
    let mut latency = Vec::new();
    let mut received = 0u64;
    for task in tasks {
        if let Ok(Some(tally)) = task.await {
            latency.extend(tally.latencies);
            received += tally.notifications.len() as u64;
        }
    }
    let after = server_figures(server).await;
    let figures = Figures {
        clients,
        connected,
        connect: Samples::new(connect),
        latency: Samples::new(latency),
        notifications_sent: sent,
        notifications_received: received,
        server_attempts: (after.0 - before.0, after.1 - before.1),
        server_events: (after.2 - before.2, after.3 - before.3, after.4 - before.4),
    };
    println!("connect: {}", figures.connect.summary());
    println!("update latency: {}", figures.latency.summary());
    Ok(judge(&figures))
}

/// The server's counters that the rates are read from: attempts ok, failed; events queued,
/// withdrawn, delivered.
async fn server_figures(server: &Server) -> (f64, f64, f64, f64, f64) {
    let attempts = |outcome: &str| format!("livedash_connect_attempts_total{{outcome=\"{outcome}\"}}");
    let events = |outcome: &str| format!("livedash_event_deliveries_total{{outcome=\"{outcome}\"}}");
    (
        server.metric(&attempts("ok")).await,
        server.metric(&attempts("failed")).await,
        server.metric(&events("queued")).await,
        server.metric(&events("withdrawn")).await,
        server.metric(&events("delivered")).await,
    )
}

/// One page's connection: in (timed from the TCP connect to the chart's snapshot), then every
/// point's latency and every bench notification until told to stop. `None` if it never got in.
async fn watch_as_a_page(
    n: usize,
    addr: &str,
    cookie: &str,
    mut stopped: watch::Receiver<bool>,
    connected: mpsc::UnboundedSender<Option<Duration>>,
) -> Option<Tally> {
    let started = Instant::now();
    let socket = tokio::time::timeout(CONNECT_TIMEOUT, get_in(n, addr, cookie)).await.ok().and_then(Result::ok);
    let Some(mut socket) = socket else {
        let _ = connected.send(None);
        return None;
    };
    let _ = connected.send(Some(started.elapsed()));
    let mut tally = Tally::default();
    loop {
        tokio::select! {
            _ = stopped.changed() => return Some(tally),
            frame = client::next_json(&mut socket) => {
                let Some(frame) = frame else { return Some(tally) };
                note(&frame, &mut tally);
            }
        }
    }
}

/// Opens the socket and subscribes to the chart and the centre; done at the chart's snapshot.
async fn get_in(n: usize, addr: &str, cookie: &str) -> anyhow::Result<Socket> {
    let mut socket = client::open(addr, cookie, client::source(n)).await?;
    let welcome = client::next_json(&mut socket).await.unwrap_or_default();
    anyhow::ensure!(welcome["type"] == "welcome", "refused: {welcome}");
    client::send(&mut socket, &client::subscribe("chart", TOPIC, None)).await?;
    let centre = protocol::topics::NOTIFICATIONS_TOPIC;
    client::send(&mut socket, &client::subscribe("centre", centre, None)).await?;
    client::send(&mut socket, &ClientMessage::Ping).await?;
    loop {
        let frame = client::next_json(&mut socket).await.ok_or_else(|| anyhow::anyhow!("closed"))?;
        if frame["type"] == "snapshot" && frame["widgetId"] == "chart" {
            return Ok(socket);
        }
    }
}

/// Takes what an update tells: points' latencies, bench notifications' ids.
fn note(frame: &serde_json::Value, tally: &mut Tally) {
    if frame.get("type").is_some() {
        return; // snapshots, pongs, gaps: not live updates
    }
    let now = now_ms();
    for item in frame["series"].as_array().into_iter().flatten() {
        match frame["widgetId"].as_str() {
            Some("chart") => {
                if let Some(ts) = item["ts"].as_i64() {
                    tally.latencies.push(Duration::from_millis((now - ts).max(0) as u64));
                }
            }
            Some("centre") => {
                if let Some(id) = item["id"].as_str().filter(|id| id.starts_with(ID_PREFIX)) {
                    tally.notifications.insert(id.to_owned());
                }
            }
            _ => {}
        }
    }
}

/// Publishes points and notifications at their rates for `secs`; returns how many notifications.
async fn publish_for(http: &reqwest::Client, server: &Server, secs: u64) -> anyhow::Result<u64> {
    let start = Instant::now();
    let mut sent = 0;
    let ticks = secs * POINTS_PER_SEC;
    for tick in 0..ticks {
        let due = start + Duration::from_millis(tick * 1000 / POINTS_PER_SEC);
        tokio::time::sleep_until(due.into()).await;
        let point = serde_json::json!({"points": [{"ts": now_ms(), "value": tick}]});
        publish(http, server, TOPIC, point).await?;
        if tick % (POINTS_PER_SEC / NOTIFICATIONS_PER_SEC) == 0 {
            let id = format!("{ID_PREFIX}{sent}");
            let event = serde_json::json!({"id": id, "type": "notification", "level": "info", "title": "Bench"});
            publish(http, server, protocol::topics::NOTIFICATIONS_TOPIC, serde_json::json!({"events": [event]}))
                .await?;
            sent += 1;
        }
    }
    Ok(sent)
}

async fn publish(http: &reqwest::Client, server: &Server, topic: &str, body: serde_json::Value) -> anyhow::Result<()> {
    let response = http
        .post(server.url(&format!("/api/v1/publish/{topic}")))
        .bearer_auth(&server.api_key)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "publish to {topic}: {}", response.status());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_judged_against_each_target() {
        let ms = |v: &[u64]| Samples::new(v.iter().map(|m| Duration::from_millis(*m)).collect());
        let figures = Figures {
            clients: 1000,
            connected: 995,
            connect: ms(&[100, 200, 1200]),
            latency: ms(&[10, 20, 30, 40, 600]),
            notifications_sent: 50,
            notifications_received: 50 * 995,
            server_attempts: (995.0, 0.0),
            server_events: (1000.0, 10.0, 985.0),
        };
        let lines: Vec<String> = judge(&figures).iter().map(Verdict::line).collect();
        assert_eq!(
            lines,
            [
                "PASS connection success rate (1000 clients): 99.50 % (995 of 1000) (target > 99 %)",
                "PASS connection success rate (server: ok / (ok + failed)): 100.00 % (995 of 995) (target > 99 %)",
                "FAIL connect p95 (1000 clients): 1200 ms (target < 1000 ms)",
                "PASS update latency median (1000 clients): 30 ms (target < 200 ms)",
                "FAIL update latency p95 (1000 clients): 600 ms (target < 500 ms)",
                "PASS notification delivery rate (1000 clients): 100.00 % (49750 of 49750) (target > 99.5 %)",
                "FAIL notification delivery rate (server: delivered / queued): 99.49 % (985 of 990) (target > 99.5 %)",
            ]
        );
        assert!(!rate("nothing".into(), 0.0, 0.0, 99.0).pass, "no sample is no pass");
    }
}
