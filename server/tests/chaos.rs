//! Chaos: numbered messages flow on a topic of every kind while clients' sockets are dropped at
//! random, one client stops reading for a while, and the server restarts in the middle (losing its
//! in-memory broker). Each client resumes as the browser's client does (per widget, from the resume
//! token of the last message it applied). Afterwards every client must have seen every number
//! exactly once, or a `gap` followed by a snapshot that holds the later state: nothing silently
//! lost, nothing repeated. Kinds that coalesce (`metrics`, `collection`) must never go backwards and
//! must end at the final state.

mod support;

use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;
use server::config::Config;
use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use support::{ACME_ADMIN, TestServer, WAIT, acme};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const CLIENTS: usize = 6;
const NUMBERS: u64 = 400;
const DOCS: u64 = 5;
const TOPICS: [(&str, &str); 4] =
    [("series", "chaos/series"), ("metrics", "chaos/metrics"), ("events", "chaos/events"), ("docs", "chaos/docs")];

/// What one client learnt of one widget's stream, and what was wrong with it.
#[derive(Debug, Default)]
struct Stream {
    /// Highest number applied (series, events, metrics); per document for the collection.
    last: u64,
    docs: BTreeMap<String, u64>,
    /// A `gap` was announced and its snapshot has not come yet.
    gap: bool,
    /// The last snapshot was empty after a gap (a restarted topic): the next number starts anew.
    restarted: bool,
    /// Anything received yet (the first snapshot needs no gap).
    started: bool,
    resume_token: Option<String>,
    violations: Vec<String>,
    /// What came: gaps, snapshots, updates.
    seen: [usize; 3],
}

impl Stream {
    fn on(&mut self, widget: &str, message: &Value) {
        if let Some(token) = message["meta"]["resumeToken"].as_str() {
            self.resume_token = Some(token.to_owned());
        }
        match message["type"].as_str() {
            Some("gap") => {
                self.seen[0] += 1;
                self.gap = true;
            }
            Some("snapshot") => {
                self.seen[1] += 1;
                self.snapshot(widget, &message["series"]);
            }
            None => {
                self.seen[2] += 1;
                self.update(widget, &message["series"]);
            }
            Some(other) => self.violations.push(format!("{widget}: unexpected {other}: {message}")),
        }
        self.started = true;
    }

    fn update(&mut self, widget: &str, items: &Value) {
        for item in items.as_array().into_iter().flatten() {
            let (doc, n) = number(widget, item);
            match doc {
                Some(doc) => {
                    let last = self.docs.entry(doc.clone()).or_default();
                    if n <= *last && !self.restarted {
                        self.violations.push(format!("{widget}/{doc}: {n} after {last}"));
                    }
                    *last = n;
                }
                None if widget == "metrics" => {
                    if n <= self.last && !self.restarted {
                        self.violations.push(format!("metrics: {n} after {}", self.last));
                    }
                    self.last = n;
                }
                None => {
                    if n <= self.last && !self.restarted {
                        self.violations.push(format!("{widget}: {n} repeated (last {})", self.last));
                    } else if n != self.last + 1 && !self.restarted {
                        self.violations.push(format!("{widget}: {} to {} lost silently", self.last + 1, n - 1));
                    }
                    self.last = n;
                }
            }
            self.restarted = false;
        }
    }

    fn snapshot(&mut self, widget: &str, items: &Value) {
        let mut numbers = Vec::new();
        let mut docs = BTreeMap::new();
        for item in items.as_array().into_iter().flatten() {
            match number(widget, item) {
                (Some(doc), n) => {
                    docs.insert(doc, n);
                }
                (None, n) => numbers.push(n),
            }
        }
        let coalescing = matches!(widget, "metrics" | "docs");
        let newest = numbers.iter().copied().max();
        if numbers.is_empty() && docs.is_empty() {
            // Only a topic that started again (after the server restarted) is empty; only a gap may
            // say so to a reader that had seen numbers.
            if self.started && (self.last > 0 || !self.docs.is_empty()) && !self.gap {
                self.violations.push(format!("{widget}: state emptied without a gap"));
            }
            self.restarted = self.gap;
        } else if !coalescing {
            let newest = newest.unwrap_or(0);
            if newest < self.last && !self.gap {
                self.violations.push(format!("{widget}: snapshot at {newest} went back from {}", self.last));
            }
            if newest > self.last && self.started && !self.gap {
                self.violations.push(format!("{widget}: {} to {newest} skipped without a gap", self.last + 1));
            }
            self.last = newest;
            self.restarted = false;
        } else {
            for (doc, n) in &docs {
                let last = self.docs.get(doc).copied().unwrap_or(0);
                if *n < last && !self.gap {
                    self.violations.push(format!("{widget}/{doc}: snapshot went back to {n} from {last}"));
                }
            }
            if !docs.is_empty() {
                self.docs = docs;
            }
            if let Some(newest) = newest {
                if newest < self.last && !self.gap {
                    self.violations.push(format!("{widget}: snapshot went back to {newest} from {}", self.last));
                }
                self.last = newest;
            }
            self.restarted = false;
        }
        self.gap = false;
    }
}

/// The number an item carries, and for a document its id.
fn number(widget: &str, item: &Value) -> (Option<String>, u64) {
    match widget {
        "series" | "metrics" => (None, item["value"].as_f64().unwrap() as u64),
        "events" => (None, item["id"].as_str().unwrap().trim_start_matches('e').parse().unwrap()),
        _ => (Some(item["id"].as_str().unwrap().to_owned()), item["doc"]["n"].as_u64().unwrap()),
    }
}

enum Command {
    /// Drop the socket (as a network cut would) and come back.
    Drop,
    /// Stop reading for this long.
    Stall(Duration),
    Stop,
}

type Streams = Arc<Mutex<HashMap<&'static str, Stream>>>;

/// One browser: connects, subscribes each widget from its last resume token, applies what comes,
/// and on any loss of the socket comes back after a short random delay.
async fn client(addr: SocketAddr, cookie: String, streams: Streams, mut commands: mpsc::Receiver<Command>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let mut request = format!("ws://{addr}/api/ws").into_client_request().unwrap();
        request.headers_mut().insert("cookie", cookie.parse().unwrap());
        request.headers_mut().insert("origin", format!("http://{addr}").parse().unwrap());
        let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
            tokio::time::sleep(Duration::from_millis(rng.random_range(20..80))).await;
            continue;
        };
        let subscriptions: Vec<String> = {
            let streams = streams.lock().unwrap();
            TOPICS
                .iter()
                .map(|(widget, topic)| {
                    let token = streams.get(widget).and_then(|s| s.resume_token.clone());
                    let message = protocol::ClientMessage::Subscribe {
                        widget_id: (*widget).into(),
                        topic: (*topic).into(),
                        resume_token: token,
                    };
                    message.to_json()
                })
                .collect()
        };
        let mut subscribed = true;
        for text in subscriptions {
            subscribed &= socket.send(Message::text(text)).await.is_ok();
        }
        if !subscribed {
            continue;
        }
        loop {
            tokio::select! {
                message = socket.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let message: Value = serde_json::from_str(&text).unwrap();
                        let Some(widget) = message["widgetId"].as_str() else { continue };
                        let widget = TOPICS.iter().find(|(w, _)| *w == widget).unwrap().0;
                        streams.lock().unwrap().entry(widget).or_default().on(widget, &message);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
                command = commands.recv() => match command {
                    Some(Command::Drop) => break,
                    Some(Command::Stall(how_long)) => tokio::time::sleep(how_long).await,
                    Some(Command::Stop) | None => return,
                },
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..50))).await;
    }
}

fn publish_all(server: &TestServer, n: u64) {
    use protocol::{Change, ChangeOp, Event, Item, Level, Metric, Point, TopicKind};
    let broker = &server.broker;
    broker
        .publish(&acme("chaos/series"), TopicKind::Series, vec![Item::Point(Point { ts: n as i64, value: n as f64 })])
        .unwrap();
    let metric = Item::Metric(Metric { key: "n".into(), value: n as f64 });
    broker.publish(&acme("chaos/metrics"), TopicKind::Metrics, vec![metric]).unwrap();
    let event = Event {
        id: format!("e{n}"),
        ts: n as i64,
        event_type: "notification".into(),
        level: Level::Info,
        title: format!("number {n}"),
        body: None,
        severity: None,
        scheduled_at: None,
        data: None,
    };
    broker.publish(&acme("chaos/events"), TopicKind::Events, vec![Item::Event(event)]).unwrap();
    let doc = serde_json::json!({ "n": n }).as_object().unwrap().clone();
    let change = Change { op: ChangeOp::Upsert, id: format!("d{}", n % DOCS), doc: Some(doc) };
    broker.publish(&acme("chaos/docs"), TopicKind::Collection, vec![Item::Change(change)]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_drops_a_stall_and_a_restart_every_client_gets_every_number_once_or_a_gap_and_snapshot() {
    let config = Config {
        demo: false,
        connect_attempts_per_min: 100_000,
        max_connections_per_user: 100,
        // Small, so the stalled reader overflows its queue and has to be healed.
        outbox_capacity: 16,
        // Long enough that the replays after the drops come from history.
        history_len: 10_000,
        ..Config::default()
    };
    let mut server = TestServer::start(config).await;
    let cookie = server.login(ACME_ADMIN).await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let streams: Streams = Arc::default();
        let (commands, received) = mpsc::channel(16);
        let task = tokio::spawn(client(server.addr, cookie.clone(), streams.clone(), received, i as u64));
        clients.push((streams, commands, task));
    }
    let all_subscribed = || clients.iter().all(|(s, _, _)| s.lock().unwrap().len() == TOPICS.len());
    let deadline = tokio::time::Instant::now() + WAIT;
    publish_all(&server, 1);
    while !all_subscribed() {
        assert!(tokio::time::Instant::now() < deadline, "every client subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut drops, mut stalls) = (0, 0);
    for n in 2..=NUMBERS {
        if n == NUMBERS / 2 {
            server = server.restart().await;
        }
        publish_all(&server, n);
        let who = rng.random_range(0..CLIENTS);
        match rng.random_range(0..100) {
            0..8 => {
                drops += 1;
                let _ = clients[who].1.try_send(Command::Drop);
            }
            8..10 => {
                stalls += 1;
                let _ = clients[who].1.try_send(Command::Stall(Duration::from_millis(300)));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // Everyone catches up to the end.
    let done = |s: &Stream, widget: &str| match widget {
        "docs" => (0..DOCS).all(|d| s.docs.get(&format!("d{d}")).is_some_and(|n| n + DOCS > NUMBERS)),
        _ => s.last == NUMBERS,
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let caught_up = clients.iter().all(|(streams, _, _)| {
            let streams = streams.lock().unwrap();
            TOPICS.iter().all(|(w, _)| streams.get(w).is_some_and(|s| done(s, w)))
        });
        if caught_up {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            for (i, (streams, _, _)) in clients.iter().enumerate() {
                for (w, s) in streams.lock().unwrap().iter() {
                    eprintln!("client {i} {w}: last {} docs {:?} gap {}", s.last, s.docs, s.gap);
                }
            }
            panic!("not every client caught up");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut violations = Vec::new();
    let mut seen = [0; 3];
    for (i, (streams, commands, task)) in clients.into_iter().enumerate() {
        let _ = commands.send(Command::Stop).await;
        task.await.unwrap();
        for (widget, stream) in streams.lock().unwrap().iter() {
            violations.extend(stream.violations.iter().map(|v| format!("client {i} {widget}: {v}")));
            (0..3).for_each(|k| seen[k] += stream.seen[k]);
        }
    }
    let [gaps, snapshots, updates] = seen;
    eprintln!(
        "{drops} drops, {stalls} stalls, one restart, {NUMBERS} numbers on each of 4 topics, {CLIENTS} clients: \
         {gaps} gaps, {snapshots} snapshots, {updates} updates received"
    );
    assert!(drops > 10 && stalls > 2, "the chaos happened");
    assert!(gaps >= CLIENTS * 4, "at least the restart's gap on every stream");
    assert!(violations.is_empty(), "{violations:#?}");
    server.stop().await;
}

/// The checker itself: it must catch what the test is there to catch.
#[test]
fn the_checker_catches_silent_loss_repeats_and_going_back() {
    let point = |n: u64| serde_json::json!({"series": [{"ts": n, "value": n}], "meta": {}});
    let snapshot = |ns: &[u64]| {
        let series: Vec<Value> = ns.iter().map(|n| serde_json::json!({"ts": n, "value": n})).collect();
        serde_json::json!({"type": "snapshot", "series": series, "meta": {}})
    };
    let gap = serde_json::json!({"type": "gap"});
    let run = |messages: &[Value]| {
        let mut stream = Stream::default();
        messages.iter().for_each(|m| stream.on("series", m));
        stream.violations
    };
    assert!(run(&[snapshot(&[1, 2]), point(3), point(4)]).is_empty());
    assert!(run(&[snapshot(&[1, 2]), point(3), gap.clone(), snapshot(&[7, 8]), point(9)]).is_empty());
    assert!(run(&[snapshot(&[1]), point(2), gap.clone(), snapshot(&[]), point(50), point(51)]).is_empty(), "restart");
    assert_eq!(run(&[snapshot(&[1]), point(3)]).len(), 1, "2 lost silently");
    assert_eq!(run(&[snapshot(&[1]), point(2), point(2)]).len(), 1, "2 repeated");
    assert_eq!(run(&[snapshot(&[1]), point(2), snapshot(&[5])]).len(), 1, "a jump without a gap");
    assert_eq!(run(&[snapshot(&[1]), point(2), snapshot(&[])]).len(), 1, "emptied without a gap");
}
