//! A built-in source of plausible data, so a fresh install shows a moving dashboard at once.
//!
//! Two demo tenants run the same simulated shop at different sizes, so their numbers differ and a
//! leak from one to the other would show. Each tick publishes to one topic of every kind. The
//! simulation ([`DemoShop`]) is pure: it takes its randomness as an argument.

use crate::topic_name::{TenantId, TopicKey, TopicName};
use crate::{
    broker::{cluster::Cluster, engine::Engine},
    shutdown::ShutdownSignal,
};
use app::pages::{DEMO_KPI_TOPIC as KPI_TOPIC, DEMO_ORDERS_TOPIC};
use protocol::topics::NOTIFICATIONS_TOPIC;
use protocol::{Change, ChangeOp, Event, Item, Level, Metric, Point, Severity, TopicKind};
use serde_json::json;
use std::{collections::VecDeque, sync::Arc, time::Duration};

/// The demo tenants and how big each shop is.
const SHOPS: [(&str, f64); 2] = [("acme", 1.0), ("globex", 2.5)];
pub const OPEN_ORDERS_TOPIC: &str = "orders/open";
pub const TICKETS_TOPIC: &str = "support/tickets";
pub use protocol::topics::JOBS_TOPIC;
/// Every demo topic and its kind.
pub const TOPICS: [(&str, TopicKind); 6] = [
    (DEMO_ORDERS_TOPIC, TopicKind::Series),
    (KPI_TOPIC, TopicKind::Metrics),
    (NOTIFICATIONS_TOPIC, TopicKind::Events),
    (OPEN_ORDERS_TOPIC, TopicKind::Collection),
    (TICKETS_TOPIC, TopicKind::Series),
    (JOBS_TOPIC, TopicKind::Events),
];
/// Background jobs the demo shop runs, one at a time: name, and the steps each logs.
const JOBS: [(&str, [&str; 4]); 3] = [
    (
        "Nightly invoice export",
        ["Collecting invoices", "Rendering PDFs", "Uploading to archive", "Notifying accounting"],
    ),
    (
        "Warehouse stock sync",
        ["Fetching stock levels", "Reconciling 3 warehouses", "Updating catalogue", "Clearing caches"],
    ),
    (
        "Customer e-mail digest",
        ["Selecting recipients", "Rendering templates", "Queuing e-mails", "Recording delivery"],
    ),
];
/// A job starts every this many ticks.
const JOB_EVERY: u64 = 15;
/// Support tickets are counted every this many ticks.
const TICKETS_EVERY: u64 = 3;
/// Orders per second hover around this value (times the shop's size).
const ORDERS_MEAN: f64 = 40.0;
/// Open orders shown before the oldest ships.
const OPEN_ORDERS_KEPT: usize = 8;

pub fn tenants() -> Vec<TenantId> {
    SHOPS.iter().map(|(t, _)| TenantId::parse(t).expect("demo tenant ids are valid")).collect()
}

/// The cluster duty the demo feed runs under: one node of a deployment publishes the ticks.
const DUTY: &str = "demo-feed";
/// How long a node holds the duty without renewing it: a node that stops or dies hands the feed
/// over this long after its last tick, at most.
const DUTY_TTL: Duration = Duration::from_secs(5);

/// Publishes every demo shop's tick each `every`, until shutdown, on the one node of the
/// deployment that holds the feed's duty (with several nodes in demo mode, the others stand by).
pub async fn run(engine: Arc<dyn Engine>, cluster: Arc<dyn Cluster>, every: Duration, mut shutdown: ShutdownSignal) {
    let mut shops: Vec<DemoShop> =
        tenants().into_iter().zip(SHOPS).map(|(t, (_, size))| DemoShop::new(t, size)).collect();
    // Declared up front, so dashboards can subscribe before the first (rare) event of a kind.
    for shop in &shops {
        for (topic, kind) in TOPICS {
            let key = TopicKey::new(shop.tenant.clone(), TopicName::parse(topic).expect("demo topics are valid"));
            if let Err(e) = engine.declare(key.clone(), kind).await {
                tracing::error!(error = %e, topic = %key, "demo feed could not declare its topic");
            }
        }
    }
    let mut ticker = tokio::time::interval(every);
    let mut leading = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.stopping() => break,
        }
        let holds = cluster.hold_duty(DUTY, DUTY_TTL.max(every * 3)).await;
        if leading != Some(holds) {
            leading = Some(holds);
            tracing::info!(
                publishing = holds,
                "the demo feed {} on this node",
                if holds { "runs" } else { "stands by" }
            );
        }
        if !holds {
            continue;
        }
        let now = crate::clock::now_ms();
        for shop in &mut shops {
            for (topic, kind, items) in shop.tick(now, &mut rand::random::<f64>) {
                let key = TopicKey::new(shop.tenant.clone(), TopicName::parse(topic).expect("demo topics are valid"));
                if let Err(e) = engine.publish(key.clone(), kind, items).await {
                    tracing::error!(error = %e, topic = %key, "demo feed could not publish");
                }
            }
        }
    }
    if leading == Some(true) {
        cluster.release_duty(DUTY).await;
    }
}

/// One simulated shop.
pub struct DemoShop {
    pub tenant: TenantId,
    size: f64,
    tick: u64,
    orders_per_second: f64,
    orders_today: f64,
    revenue_today: f64,
    active_sessions: f64,
    open_orders: VecDeque<String>,
    jobs_run: u64,
    job: Option<Job>,
}

/// The job running now: which one, how far it got, and whether it will fail.
struct Job {
    id: String,
    name: &'static str,
    steps: [&'static str; 4],
    done: usize,
    fails: bool,
}

impl DemoShop {
    pub fn new(tenant: TenantId, size: f64) -> Self {
        Self {
            tenant,
            size,
            tick: 0,
            orders_per_second: ORDERS_MEAN,
            orders_today: 0.0,
            revenue_today: 0.0,
            active_sessions: 300.0 * size,
            open_orders: VecDeque::new(),
            jobs_run: 0,
            job: None,
        }
    }

    /// One second of business: a message for each topic that changed. `random` yields values
    /// uniform in `[0, 1)`.
    pub fn tick(&mut self, now: i64, random: &mut impl FnMut() -> f64) -> Vec<(&'static str, TopicKind, Vec<Item>)> {
        self.tick += 1;
        self.orders_per_second = next_orders(self.orders_per_second, random());
        let orders = self.orders_per_second * self.size;
        self.orders_today += orders;
        self.revenue_today += orders * (38.0 + 10.0 * random());
        self.active_sessions = (self.active_sessions + (random() - 0.5) * 20.0 * self.size).max(0.0).round();
        let mut out = vec![
            (DEMO_ORDERS_TOPIC, TopicKind::Series, vec![Item::Point(Point { ts: now, value: round1(orders) })]),
            (KPI_TOPIC, TopicKind::Metrics, self.kpis()),
        ];
        if let Some(event) = self.event(now, random()) {
            out.push((NOTIFICATIONS_TOPIC, TopicKind::Events, vec![Item::Event(event)]));
        }
        if self.tick.is_multiple_of(2) {
            out.push((OPEN_ORDERS_TOPIC, TopicKind::Collection, self.order_changes(now, random())));
        }
        if self.tick.is_multiple_of(TICKETS_EVERY) {
            let tickets = (random() * 8.0 * self.size).round();
            out.push((TICKETS_TOPIC, TopicKind::Series, vec![Item::Point(Point { ts: now, value: tickets })]));
        }
        if let Some(event) = self.job_step(now, random()) {
            out.push((JOBS_TOPIC, TopicKind::Events, vec![Item::Event(event)]));
        }
        out
    }

    fn kpis(&self) -> Vec<Item> {
        let mut kpis = vec![
            ("orders_today", self.orders_today.round()),
            ("revenue_today", self.revenue_today.round()),
            ("active_sessions", self.active_sessions),
        ];
        // Conversion moves slowly: it is only sent when it changes, every fifth tick.
        if self.tick % 5 == 1 {
            kpis.push(("conversion_rate", round1(2.0 + (self.orders_per_second - ORDERS_MEAN) / 20.0)));
        }
        kpis.into_iter().map(|(key, value)| Item::Metric(Metric { key: key.into(), value })).collect()
    }

    fn event(&self, now: i64, random: f64) -> Option<Event> {
        let (event_type, level, severity, title) = match self.tick {
            t if t.is_multiple_of(41) => {
                ("system:error", Level::Error, Some(Severity::High), "Payment gateway timeouts")
            }
            t if t.is_multiple_of(23) => {
                ("system:error", Level::Warning, Some(Severity::Medium), "Warehouse sync is lagging")
            }
            t if t.is_multiple_of(7) && random < 0.5 => {
                ("notification", Level::Info, None, "New customer sign-ups are up")
            }
            t if t.is_multiple_of(7) => ("notification", Level::Success, None, "Nightly export finished"),
            _ => return None,
        };
        Some(Event {
            id: format!("{}-{}", self.tenant, self.tick),
            ts: now,
            event_type: event_type.into(),
            level,
            title: title.into(),
            body: Some(format!("Reported by the demo feed of {}.", self.tenant)),
            severity,
            scheduled_at: None,
            data: None,
        })
    }

    /// Starts a job every [`JOB_EVERY`] ticks, then logs one step per tick until it succeeds or
    /// (about one run in five) fails.
    fn job_step(&mut self, now: i64, random: f64) -> Option<Event> {
        if self.job.is_none() && self.tick % JOB_EVERY == 1 {
            let (name, steps) = JOBS[(self.jobs_run % JOBS.len() as u64) as usize];
            self.jobs_run += 1;
            let id = format!("job-{}", self.jobs_run);
            self.job = Some(Job { id, name, steps, done: 0, fails: random < 0.2 });
        }
        let job = self.job.as_mut()?;
        let (status, level, body, progress) = match job.done {
            0 => ("running", Level::Info, format!("Started by the scheduler on {}", self.tenant), 0),
            n if n <= job.steps.len() && job.fails && n == 3 => {
                ("failed", Level::Error, "Upstream answered 503 Service Unavailable; will retry tonight".into(), 75)
            }
            n if n <= job.steps.len() => {
                ("running", Level::Info, job.steps[n - 1].to_owned(), n * 100 / (job.steps.len() + 1))
            }
            _ => ("succeeded", Level::Success, "Finished without errors".into(), 100),
        };
        job.done += 1;
        let event = Event {
            id: format!("{}-{}-{}", self.tenant, job.id, job.done),
            ts: now,
            event_type: "job".into(),
            level,
            title: job.name.into(),
            body: Some(body),
            severity: None,
            scheduled_at: None,
            data: json!({"jobId": job.id, "status": status, "progress": progress}).as_object().cloned(),
        };
        if status != "running" {
            self.job = None;
        }
        Some(event)
    }

    fn order_changes(&mut self, now: i64, random: f64) -> Vec<Item> {
        let id = format!("{}-{}", &self.tenant.as_str()[..1].to_uppercase(), 10_000 + self.tick / 2);
        const CUSTOMERS: [&str; 6] = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret"];
        let customer = CUSTOMERS[(random * 6.0) as usize % 6];
        let doc = json!({
            "customer": customer,
            "total": round1(20.0 + random * 180.0 * self.size),
            "status": "open",
            "createdAt": now,
        });
        let mut changes = vec![Change { op: ChangeOp::Upsert, id: id.clone(), doc: doc.as_object().cloned() }];
        self.open_orders.push_back(id);
        if self.open_orders.len() > OPEN_ORDERS_KEPT {
            let shipped = self.open_orders.pop_front().expect("more than kept");
            changes.push(Change { op: ChangeOp::Delete, id: shipped, doc: None });
        }
        changes.into_iter().map(Item::Change).collect()
    }
}

/// A mean-reverting random walk: moves up to ±4 per step and is pulled back towards the mean, so it
/// wanders like real traffic but never runs off or below zero. `random` is uniform in `[0, 1)`.
pub fn next_orders(previous: f64, random: f64) -> f64 {
    let step = (random - 0.5) * 8.0;
    let pull = (ORDERS_MEAN - previous) * 0.1;
    round1(previous + step + pull).max(0.0)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> DemoShop {
        DemoShop::new(TenantId::parse("acme").unwrap(), 1.0)
    }

    #[test]
    fn the_walk_stays_in_a_plausible_band() {
        let mut v = ORDERS_MEAN;
        for i in 0..10_000 {
            // A deterministic, adversarial input: always pushes the same way for long stretches.
            let r = if (i / 500) % 2 == 0 { 0.999 } else { 0.0 };
            v = next_orders(v, r);
            assert!((0.0..=100.0).contains(&v), "{v}");
        }
    }

    #[test]
    fn jobs_run_from_start_to_an_end_one_at_a_time() {
        let mut s = shop();
        let mut statuses = Vec::new();
        for t in 0..200 {
            for (topic, _, items) in s.tick(t, &mut || 0.1) {
                if topic == JOBS_TOPIC
                    && let Item::Event(e) = &items[0]
                {
                    statuses.push(e.data.as_ref().unwrap()["status"].as_str().unwrap().to_owned());
                }
            }
        }
        // random 0.1 < 0.2: every run fails at its third step.
        let runs: Vec<&[String]> = statuses.split_inclusive(|s| s != "running").collect();
        assert!(runs.len() >= 10, "{runs:?}");
        for run in &runs[..runs.len() - 1] {
            assert_eq!(run.last().unwrap(), "failed");
            assert!(run[..run.len() - 1].iter().all(|s| s == "running"));
        }
    }

    #[test]
    fn every_tick_feeds_the_chart_and_the_kpis_and_every_kind_shows_up() {
        let mut s = shop();
        let mut seen = std::collections::HashSet::new();
        for t in 0..50 {
            let messages = s.tick(t, &mut || 0.3);
            assert_eq!(messages[0].0, DEMO_ORDERS_TOPIC);
            assert_eq!(messages[1].0, KPI_TOPIC);
            seen.extend(messages.iter().map(|(topic, kind, _)| (*topic, *kind)));
        }
        assert_eq!(seen, TOPICS.into_iter().collect(), "every declared topic is fed, with its kind");
    }

    #[test]
    fn open_orders_stay_bounded() {
        let mut s = shop();
        let mut open = std::collections::BTreeSet::new();
        for t in 0..200 {
            for (_, _, items) in s.tick(t, &mut || 0.5) {
                for item in items {
                    if let Item::Change(c) = item {
                        match c.op {
                            ChangeOp::Upsert => open.insert(c.id),
                            ChangeOp::Delete => open.remove(&c.id),
                        };
                    }
                }
            }
        }
        assert_eq!(open.len(), OPEN_ORDERS_KEPT);
    }

    #[test]
    fn every_published_item_passes_the_topic_state_rules() {
        use crate::broker::topic_state::{StateLimits, TopicState};
        let limits = StateLimits { series_points: 10, events: 10, metric_keys: 10, documents: 10, max_bytes: 1 << 20 };
        let mut states = std::collections::HashMap::new();
        let mut s = shop();
        for t in 0..100 {
            for (topic, kind, items) in s.tick(t, &mut rand::random::<f64>) {
                let state = states.entry(topic).or_insert_with(|| TopicState::new(kind));
                state.check(&items, &limits).unwrap();
                state.apply(&items, &limits);
            }
        }
    }
}
