//! The broker on its own: snapshots then deltas, tenancy, waiting subscriptions, resume and gaps,
//! limits and budgets, sweeping, fan-out.

use super::*;
use crate::topic_name::TopicName;
use protocol::{ControlMessage, Metric, Point, ServerMessage, Update};

fn config() -> BrokerConfig {
    BrokerConfig {
        history_len: 100,
        history_max_age: Duration::from_secs(3600),
        history_max_bytes: 1 << 20,
        tenant_history_max_bytes: 1 << 22,
        tenant_state_max_bytes: 1 << 22,
        state: StateLimits { series_points: 50, events: 50, metric_keys: 50, documents: 50, max_bytes: 1 << 20 },
        max_topics_per_tenant: 3,
        max_waiting_per_tenant: 100,
        topic_idle: Duration::from_secs(600),
    }
}

fn key(tenant: &str, name: &str) -> TopicKey {
    TopicKey::new(TenantId::parse(tenant).unwrap(), TopicName::parse(name).unwrap())
}

fn t() -> TopicKey {
    key("acme", "t")
}

fn broker_with(config: BrokerConfig) -> Broker {
    let b = Broker::new(config);
    b.declare(&t(), TopicKind::Series).unwrap();
    b
}

fn broker() -> Broker {
    broker_with(config())
}

fn subscriber(widget: &str, capacity: usize) -> Subscriber {
    Subscriber { connection: 1, widget: widget.into(), outbox: Arc::new(Outbox::new(capacity)), hidden: None }
}

fn point(v: f64) -> Vec<Item> {
    vec![Item::Point(Point { ts: v as i64, value: v })]
}

fn publish(b: &Broker, v: f64) -> u64 {
    b.publish(&t(), TopicKind::Series, point(v)).unwrap()
}

fn messages(outbox: &Outbox) -> Vec<ServerMessage> {
    outbox.take().frames.into_iter().map(|f| serde_json::from_str(f.text()).unwrap()).collect()
}

fn update_offsets(messages: &[ServerMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Update(Update { meta, .. }) => Some(meta.offset),
            _ => None,
        })
        .collect()
}

#[test]
fn subscribe_gets_a_snapshot_then_every_delta_in_order() {
    let b = broker();
    publish(&b, 1.0);
    let sub = subscriber("w", 100);
    b.subscribe(&t(), sub.clone(), ReadFrom::Start).unwrap();
    assert_eq!(b.publish(&t(), TopicKind::Series, point(2.0)), Ok(2));
    publish(&b, 3.0);
    let got = messages(&sub.outbox);
    let ServerMessage::Control(ControlMessage::Snapshot { series, meta, .. }) = &got[0] else {
        panic!("first message must be a snapshot: {got:?}")
    };
    assert_eq!(series, &point(1.0));
    assert_eq!((meta.offset, meta.topic.as_str()), (1, "t"), "the client sees its own relative name");
    assert_eq!(update_offsets(&got), vec![2, 3]);
}

#[test]
fn tenants_never_see_each_others_topics() {
    let b = broker();
    let globex = key("globex", "t");
    let waiting = Subscriber { connection: 2, ..subscriber("w", 10) };
    assert_eq!(b.subscribe(&globex, waiting.clone(), ReadFrom::Start), Ok(Subscribed::Pending));
    b.publish(&globex, TopicKind::Series, point(9.0)).unwrap();
    let acme_sub = subscriber("w", 10);
    b.subscribe(&t(), acme_sub.clone(), ReadFrom::Start).unwrap();
    publish(&b, 1.0);
    let got = messages(&acme_sub.outbox);
    let ServerMessage::Control(ControlMessage::Snapshot { series, .. }) = &got[0] else { panic!() };
    assert!(series.is_empty(), "globex's point is not in acme's topic");
    assert_eq!(update_offsets(&got), vec![1]);
}

#[test]
fn a_subscription_to_a_topic_not_yet_created_waits_for_it() {
    let b = broker();
    let later = key("acme", "later");
    let sub = subscriber("w", 10);
    assert_eq!(b.subscribe(&later, sub.clone(), ReadFrom::Start), Ok(Subscribed::Pending));
    assert!(sub.outbox.take().frames.is_empty());
    let gone = Subscriber { connection: 9, ..subscriber("x", 10) };
    b.subscribe(&later, gone.clone(), ReadFrom::Start).unwrap();
    b.unsubscribe(&later, 9, "x");
    b.publish(&later, TopicKind::Series, point(1.0)).unwrap();
    let got = messages(&sub.outbox);
    assert!(matches!(&got[0], ServerMessage::Control(ControlMessage::Snapshot { meta, series, .. })
        if meta.offset == 0 && series.is_empty()));
    assert_eq!(update_offsets(&got), vec![1]);
    assert!(gone.outbox.take().frames.is_empty(), "an unsubscribed waiter gets nothing");
}

#[test]
fn resuming_replays_exactly_the_missed_messages() {
    let b = broker();
    let first = subscriber("w", 100);
    b.subscribe(&t(), first.clone(), ReadFrom::Start).unwrap();
    publish(&b, 1.0);
    let got = messages(&first.outbox);
    let ServerMessage::Update(last) = got.last().unwrap() else { panic!() };
    let token = last.meta.resume_token.clone();
    b.unsubscribe(&t(), 1, "w");
    for v in 2..=6 {
        publish(&b, v as f64);
    }
    let again = subscriber("w", 100);
    b.subscribe(&t(), again.clone(), ReadFrom::Token(&token)).unwrap();
    publish(&b, 7.0);
    let got = messages(&again.outbox);
    assert_eq!(update_offsets(&got), vec![2, 3, 4, 5, 6, 7]);
    assert_eq!(got.len(), 6, "no snapshot when history bridges the gap");
}

#[test]
fn a_token_older_than_history_gets_gap_then_snapshot() {
    let b = broker_with(BrokerConfig { history_len: 2, ..config() });
    for v in 1..=5 {
        publish(&b, v as f64);
    }
    let sub = subscriber("w", 100);
    let epoch = b.topic(&t()).unwrap().inner.lock().unwrap().log.epoch().to_owned();
    b.subscribe(&t(), sub.clone(), ReadFrom::Token(&Position { epoch, offset: 1 }.token())).unwrap();
    let got = messages(&sub.outbox);
    assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })));
    assert!(matches!(&got[1], ServerMessage::Control(ControlMessage::Snapshot { meta, .. }) if meta.offset == 5));
    assert_eq!(got.len(), 2);
}

#[test]
fn a_forged_token_is_treated_as_a_gap() {
    let b = broker();
    let sub = subscriber("w", 10);
    b.subscribe(&t(), sub.clone(), ReadFrom::Token("not-a-token")).unwrap();
    let got = messages(&sub.outbox);
    assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })));
}

#[test]
fn an_overflowing_series_subscriber_gets_gap_and_snapshot_without_holding_back_others() {
    let b = broker();
    let slow = subscriber("slow", 2);
    let fast = Subscriber { connection: 2, ..subscriber("fast", 100) };
    b.subscribe(&t(), slow.clone(), ReadFrom::Start).unwrap();
    b.subscribe(&t(), fast.clone(), ReadFrom::Start).unwrap();
    for v in 1..=10 {
        publish(&b, v as f64);
    }
    assert_eq!(update_offsets(&messages(&fast.outbox)), (1..=10).collect::<Vec<_>>());
    let batch = slow.outbox.take();
    assert_eq!(batch.lagging, vec![slow.widget.clone()]);
    b.resync(&t(), &slow).unwrap();
    publish(&b, 11.0);
    let got = messages(&slow.outbox);
    assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })));
    assert!(matches!(&got[1], ServerMessage::Control(ControlMessage::Snapshot { meta, .. }) if meta.offset == 10));
    assert_eq!(update_offsets(&got), vec![11]);
}

#[test]
fn an_overflowing_metrics_subscriber_gets_the_coalesced_state_without_a_gap() {
    let b = broker();
    let kpis = key("acme", "kpis");
    let slow = subscriber("kpi", 2);
    b.declare(&kpis, TopicKind::Metrics).unwrap();
    b.subscribe(&kpis, slow.clone(), ReadFrom::Start).unwrap();
    for v in 1..=10 {
        let items = vec![Item::Metric(Metric { key: format!("k{}", v % 3), value: v as f64 })];
        b.publish(&kpis, TopicKind::Metrics, items).unwrap();
    }
    let lagging = slow.outbox.take().lagging;
    assert_eq!(lagging.len(), 1);
    b.resync(&kpis, &slow).unwrap();
    let got = messages(&slow.outbox);
    assert_eq!(got.len(), 1, "no gap: latest value per key is all a KPI tile needs");
    let ServerMessage::Control(ControlMessage::Snapshot { series, .. }) = &got[0] else { panic!() };
    let latest: Vec<(String, f64)> = series
        .iter()
        .map(|i| match i {
            Item::Metric(m) => (m.key.clone(), m.value),
            _ => panic!(),
        })
        .collect();
    assert_eq!(latest, vec![("k0".into(), 9.0), ("k1".into(), 10.0), ("k2".into(), 8.0)]);
}

#[test]
fn a_topic_keeps_its_kind_and_tenants_their_topic_quota() {
    let b = broker();
    assert!(matches!(
        b.publish(&t(), TopicKind::Metrics, vec![]),
        Err(BrokerError::KindMismatch { existing: TopicKind::Series, .. })
    ));
    b.declare(&key("acme", "b"), TopicKind::Series).unwrap();
    b.declare(&key("acme", "c"), TopicKind::Series).unwrap();
    assert_eq!(b.declare(&key("acme", "d"), TopicKind::Series), Err(BrokerError::TooManyTopics(3)));
    assert!(b.declare(&key("globex", "d"), TopicKind::Series).is_ok(), "the quota is per tenant");
    assert_eq!(b.usage(&TenantId::parse("acme").unwrap()).topics, 3);
}

#[test]
fn a_refused_publish_leaves_no_trace() {
    let b = broker();
    let wrong = vec![Item::Metric(Metric { key: "k".into(), value: 1.0 })];
    assert!(matches!(b.publish(&t(), TopicKind::Series, wrong), Err(BrokerError::State(_))));
    assert_eq!(publish(&b, 1.0), 1, "the offset did not move");
}

#[test]
fn refresh_sends_a_fresh_snapshot() {
    let b = broker();
    publish(&b, 1.0);
    let sub = subscriber("w", 10);
    b.subscribe(&t(), sub.clone(), ReadFrom::Start).unwrap();
    publish(&b, 2.0);
    b.refresh(&t(), &sub).unwrap();
    let got = messages(&sub.outbox);
    assert!(matches!(&got[2], ServerMessage::Control(ControlMessage::Snapshot { meta, series, .. })
        if meta.offset == 2 && series.len() == 2));
}

fn acme_tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn blob(v: usize, bytes: usize) -> Vec<Item> {
    let event = protocol::Event {
        id: v.to_string(),
        ts: 1,
        event_type: "notification".into(),
        level: protocol::Level::Info,
        title: "x".repeat(bytes),
        body: None,
        severity: None,
        scheduled_at: None,
        data: None,
    };
    vec![Item::Event(event)]
}

#[test]
fn a_tenants_history_is_bounded_by_bytes_across_its_topics() {
    let b = Broker::new(BrokerConfig {
        tenant_history_max_bytes: 100_000,
        history_max_bytes: 60_000,
        max_topics_per_tenant: 10,
        ..config()
    });
    for i in 0..400 {
        let topic = key("acme", &format!("log/{}", i % 5));
        b.publish(&topic, TopicKind::Events, blob(i, 2_000)).unwrap();
    }
    let usage = b.usage(&acme_tenant());
    assert!(usage.history_bytes <= 100_000, "{usage:?}");
    assert!(usage.history_bytes > 50_000, "only what was over the budget went: {usage:?}");
    let kept: usize =
        (0..5).map(|i| b.topic(&key("acme", &format!("log/{i}"))).unwrap().inner.lock().unwrap().log.bytes()).sum();
    assert_eq!(kept, usage.history_bytes, "the counters match the logs");
}

#[test]
fn a_tenants_state_is_bounded_by_bytes_across_its_topics() {
    let b = Broker::new(BrokerConfig { tenant_state_max_bytes: 30_000, max_topics_per_tenant: 10, ..config() });
    let mut refused = 0;
    for i in 0..40 {
        let topic = key("acme", &format!("log/{}", i % 8));
        if let Err(e) = b.publish(&topic, TopicKind::Events, blob(i, 2_000)) {
            assert_eq!(e, BrokerError::TenantFull(30_000));
            assert_eq!(e.limit_label(), Some("tenant_state_bytes"));
            refused += 1;
        }
    }
    assert!(refused > 0);
    assert!(b.usage(&acme_tenant()).state_bytes <= 30_000);
    assert!(b.publish(&key("globex", "log/0"), TopicKind::Events, blob(1, 2_000)).is_ok(), "per tenant");
}

#[test]
fn the_sweep_ages_out_history_of_quiet_topics() {
    let b = broker_with(BrokerConfig { history_max_age: Duration::from_secs(60), ..config() });
    for v in 1..=5 {
        publish(&b, v as f64);
    }
    assert!(b.usage(&acme_tenant()).history_bytes > 0);
    let swept = b.sweep(now_ms() + 61_000, |_| false);
    assert_eq!(swept, Swept { expired: 5, retired: 0 });
    assert_eq!(b.usage(&acme_tenant()).history_bytes, 0, "the memory is back");
    assert!(b.usage(&acme_tenant()).state_bytes > 0, "the state stays: a snapshot still shows the chart");
}

#[test]
fn idle_topics_are_retired_and_a_later_subscriber_gets_gap_and_snapshot() {
    let b = broker();
    let followed = key("acme", "followed");
    let kept = key("acme", "presence/online");
    for topic in [&followed, &kept] {
        b.declare(topic, TopicKind::Series).unwrap();
    }
    let sub = subscriber("w", 10);
    b.subscribe(&followed, sub.clone(), ReadFrom::Start).unwrap();
    publish(&b, 1.0);
    let token = b.topic(&t()).unwrap().inner.lock().unwrap().log.position().token();
    let later = now_ms() + 601_000;
    let swept = b.sweep(later, |k| k.name.as_str().starts_with("presence/"));
    assert_eq!(swept.retired, 1, "only `t`: `followed` has a subscriber, presence is kept");
    assert_eq!(b.usage(&acme_tenant()).topics, 2);
    assert!(b.topic(&t()).is_err());

    let back = Subscriber { connection: 7, ..subscriber("w", 10) };
    assert_eq!(b.subscribe(&t(), back.clone(), ReadFrom::Token(&token)), Ok(Subscribed::Pending));
    publish(&b, 2.0);
    let got = messages(&back.outbox);
    assert!(matches!(got[0], ServerMessage::Control(ControlMessage::Gap { .. })), "{got:?}");
    assert!(matches!(&got[1], ServerMessage::Control(ControlMessage::Snapshot { meta, series, .. })
        if meta.offset == 0 && series.is_empty()));
    assert_eq!(update_offsets(&got), vec![1]);
    assert_ne!(Position::parse(&token).unwrap().epoch, b.epoch(&t()).unwrap(), "a new epoch");

    b.unsubscribe(&followed, 1, "w");
    assert_eq!(b.sweep(now_ms(), |_| false).retired, 0, "just left: idle only after `topic_idle`");
    assert_eq!(b.sweep(now_ms() + 601_000, |k| k == &kept).retired, 1, "`t` is followed again");
}

#[test]
fn waiting_subscriptions_are_freed_and_limited_per_tenant() {
    let b = Broker::new(BrokerConfig { max_waiting_per_tenant: 50, ..config() });
    let made_up = |i: usize| key("acme", &format!("made-up/{i}"));
    for i in 0..50 {
        let sub = Subscriber { connection: 1, ..subscriber(&format!("w{i}"), 10) };
        assert_eq!(b.subscribe(&made_up(i), sub, ReadFrom::Start), Ok(Subscribed::Pending));
    }
    let one_more = b.subscribe(&made_up(50), subscriber("w50", 10), ReadFrom::Start);
    assert_eq!(one_more, Err(BrokerError::TooManyWaiting(50)));
    assert_eq!(b.usage(&acme_tenant()).waiting, 50);
    for i in 0..50 {
        b.unsubscribe(&made_up(i), 1, &format!("w{i}"));
    }
    assert_eq!((b.usage(&acme_tenant()).waiting, b.waiting_topics()), (0, 0), "nothing is left behind");
}

#[test]
fn snapshots_are_encoded_once_per_position() {
    let b = broker();
    publish(&b, 1.0);
    let (one, two) = (subscriber("a", 10), Subscriber { connection: 2, ..subscriber("b", 10) });
    b.subscribe(&t(), one.clone(), ReadFrom::Start).unwrap();
    let cached = b.topic(&t()).unwrap().inner.lock().unwrap().snapshot.clone().unwrap();
    b.refresh(&t(), &one).unwrap();
    b.subscribe(&t(), two.clone(), ReadFrom::Start).unwrap();
    let again = b.topic(&t()).unwrap().inner.lock().unwrap().snapshot.clone().unwrap();
    assert!(Arc::ptr_eq(&cached.1, &again.1), "the same encoding served all three");
    publish(&b, 2.0);
    assert!(b.topic(&t()).unwrap().inner.lock().unwrap().snapshot.is_none(), "a publish drops it");
    let got = messages(&two.outbox);
    assert!(matches!(&got[0], ServerMessage::Control(ControlMessage::Snapshot { widget_id, .. }) if widget_id == "b"));
}

#[test]
fn a_load_that_found_no_topic_while_a_message_of_it_came_loads_again() {
    use super::replica::{Applied, Logged, Remote};
    let b = Broker::replica(config(), |_| {});
    let remote = Remote {
        key: t(),
        kind: TopicKind::Series,
        epoch: "e".into(),
        logged: Logged { offset: 1, ts: 5, items: point(1.0) },
    };
    assert_eq!(b.install(&t(), None, &[remote]), Applied::OutOfStep, "the message must not be dropped");
    assert_eq!(b.install(&t(), None, &[]), Applied::Done, "nothing came: nothing to hold");
}

#[test]
fn hidden_fields_never_reach_the_subscribers_that_may_not_see_them() {
    let b = broker();
    let ops = key("acme", "ops");
    let margin = |v: f64| {
        vec![
            Item::Metric(Metric { key: "margin".into(), value: v }),
            Item::Metric(Metric { key: "orders".into(), value: v }),
        ]
    };
    b.publish(&ops, TopicKind::Metrics, margin(1.0)).unwrap();
    let hidden = crate::permissions::mask::Hidden::of(vec!["margin".into()]).map(Arc::new);
    let (admin, viewer) = (subscriber("a", 10), Subscriber { connection: 2, hidden, ..subscriber("v", 10) });
    let other_viewer = Subscriber { connection: 3, outbox: Arc::new(Outbox::new(10)), ..viewer.clone() };
    for sub in [&admin, &viewer, &other_viewer] {
        b.subscribe(&ops, sub.clone(), ReadFrom::Start).unwrap();
    }
    let token = b.publish(&ops, TopicKind::Metrics, margin(2.0)).unwrap();
    let keys = |outbox: &Outbox| -> Vec<Vec<String>> {
        messages(outbox)
            .into_iter()
            .map(|m| {
                let series = match m {
                    ServerMessage::Update(u) => u.series,
                    ServerMessage::Control(ControlMessage::Snapshot { series, .. }) => series,
                    other => panic!("{other:?}"),
                };
                series.into_iter().map(|i| if let Item::Metric(m) = i { m.key } else { panic!() }).collect()
            })
            .collect()
    };
    assert_eq!(keys(&admin.outbox), [vec!["margin", "orders"], vec!["margin", "orders"]]);
    assert_eq!(keys(&viewer.outbox), [vec!["orders"], vec!["orders"]], "snapshot and update filtered");
    assert_eq!(keys(&other_viewer.outbox), [vec!["orders"], vec!["orders"]]);
    // A replay from a position, and a poll's read, are filtered the same way.
    b.unsubscribe(&ops, 2, "v");
    let epoch = b.epoch(&ops).unwrap();
    b.subscribe(&ops, viewer.clone(), ReadFrom::Token(&format!("{epoch}.{}", token - 1))).unwrap();
    assert_eq!(keys(&viewer.outbox), [vec!["orders"]]);
    let read = b.read(&ops, &viewer.widget, viewer.hidden.as_deref(), ReadFrom::Start, 10).unwrap();
    let texts: Vec<String> = read.frames.iter().map(|f| f.text().to_owned()).collect();
    assert!(texts[0].contains("orders") && !texts[0].contains("margin"), "{texts:?}");
}
