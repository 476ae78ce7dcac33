//! Property: whatever the interleaving of publishes, slow reads, disconnects and resumes, every
//! client ends with exactly the topic's state, applied each offset at most once, and was never left
//! with a silent hole (a loss is always announced by the server as a gap plus a snapshot).
//!
//! The clients here are the browser's own session state machine and series window, and they drive
//! the real broker and outboxes the way a connection task does (take a batch, write it, resync what
//! lagged).

use app::live::{
    series_buffer::SeriesBuffer,
    session::{Delivery, Effect, Input, LiveSession, LiveSessionConfig},
};
use proptest::prelude::*;
use protocol::{ControlMessage, Item, Point, ServerMessage, TopicKind};
use server::broker::{Broker, BrokerConfig, ReadFrom, Subscriber, topic_state::StateLimits};
use server::outbox::Outbox;
use server::topic_name::{TenantId, TopicKey, TopicName};
use std::{collections::BTreeSet, sync::Arc, time::Duration};

const WINDOW: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    Publish,
    /// Client `n` reads up to `frames` frames.
    Read(usize, usize),
    Disconnect(usize),
    /// Client `n` reconnects, resuming from its last position.
    Resume(usize),
}

fn op(clients: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => Just(Op::Publish),
        3 => (0..clients, 1..6usize).prop_map(|(c, n)| Op::Read(c, n)),
        1 => (0..clients).prop_map(Op::Disconnect),
        1 => (0..clients).prop_map(Op::Resume),
    ]
}

struct Client {
    id: u64,
    outbox: Option<Arc<Outbox>>,
    session: LiveSession,
    buffer: SeriesBuffer,
    applied: BTreeSet<(String, u64)>,
}

impl Client {
    fn new() -> Self {
        let (mut session, _) = LiveSession::start(LiveSessionConfig::default());
        session.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: None }, 0.5);
        session.handle(Input::Opened, 0.5);
        Self { id: 0, outbox: None, session, buffer: SeriesBuffer::new(WINDOW), applied: BTreeSet::new() }
    }

    /// The resume token the session would send on reconnect.
    fn token(&self) -> Option<String> {
        self.session.subscriptions()["w"].position.as_ref().map(|p| p.resume_token.clone())
    }

    fn subscriber(&self) -> Subscriber {
        Subscriber { connection: self.id, widget: "w".into(), outbox: self.outbox.clone().unwrap(), hidden: None }
    }

    /// What a connection task does: take a batch, hand it to the browser, resync what lagged.
    fn read(&mut self, broker: &Broker, key: &TopicKey, max_frames: usize) -> Result<(), TestCaseError> {
        for _ in 0..max_frames {
            let Some(outbox) = &self.outbox else { return Ok(()) };
            let batch = outbox.take();
            if batch.frames.is_empty() && batch.lagging.is_empty() {
                return Ok(());
            }
            for frame in batch.frames {
                self.apply(&frame.into_text())?;
            }
            if !batch.lagging.is_empty() {
                broker.resync(key, &self.subscriber()).unwrap();
            }
        }
        Ok(())
    }

    fn apply(&mut self, text: &str) -> Result<(), TestCaseError> {
        let message: ServerMessage = serde_json::from_str(text).unwrap();
        let announced_gap = matches!(message, ServerMessage::Control(ControlMessage::Gap { .. }));
        let points = |items: &[Item]| items.iter().filter_map(Item::as_point).copied().collect::<Vec<Point>>();
        for effect in self.session.handle(Input::Received(message), 0.5) {
            match effect {
                Effect::Deliver { delivery: Delivery::Snapshot { series, .. }, .. } => {
                    self.buffer.replace(points(&series))
                }
                Effect::Deliver { delivery: Delivery::Update { series, meta, .. }, .. } => {
                    let first_time = self.applied.insert((meta.epoch.clone(), meta.offset));
                    prop_assert!(first_time, "offset {} applied twice", meta.offset);
                    self.buffer.append(points(&series));
                }
                Effect::Deliver { delivery: Delivery::Gap, .. } => {
                    prop_assert!(announced_gap, "the client found a hole the server did not announce")
                }
                other => prop_assert!(false, "unexpected effect {other:?}"),
            }
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>, clients: usize, history: usize, capacity: usize) -> Result<(), TestCaseError> {
    let broker = Broker::new(BrokerConfig {
        history_len: history,
        history_max_age: Duration::from_secs(3600),
        state: StateLimits { series_points: WINDOW, events: WINDOW, metric_keys: 8, documents: 8, max_bytes: 1 << 20 },
        max_topics_per_tenant: 4,
        ..server::broker_config(&server::config::Config::default())
    });
    let key = TopicKey::new(TenantId::parse("acme").unwrap(), TopicName::parse("t").unwrap());
    broker.declare(&key, TopicKind::Series).unwrap();
    let connect = |client: &mut Client, broker: &Broker, next_id: &mut u64| {
        *next_id += 1;
        client.id = *next_id;
        client.outbox = Some(Arc::new(Outbox::new(capacity)));
        broker.subscribe(&key, client.subscriber(), ReadFrom::token(client.token().as_deref())).unwrap();
    };
    let mut next_id = 0;
    let mut cs: Vec<Client> = (0..clients).map(|_| Client::new()).collect();
    for c in &mut cs {
        connect(c, &broker, &mut next_id);
    }
    let mut value = 0.0;
    for op in ops {
        match op {
            Op::Publish => {
                value += 1.0;
                broker.publish(&key, TopicKind::Series, vec![Item::Point(Point { ts: value as i64, value })]).unwrap();
            }
            Op::Read(c, n) => cs[c].read(&broker, &key, n)?,
            Op::Disconnect(c) => {
                if cs[c].outbox.take().is_some() {
                    broker.unsubscribe(&key, cs[c].id, "w");
                }
            }
            Op::Resume(c) => {
                if cs[c].outbox.is_none() {
                    connect(&mut cs[c], &broker, &mut next_id);
                }
            }
        }
    }
    // Everyone comes back and reads everything: all must agree with the topic.
    let probe = Arc::new(Outbox::new(1024));
    broker
        .subscribe(
            &key,
            Subscriber { connection: u64::MAX, widget: "probe".into(), outbox: probe.clone(), hidden: None },
            ReadFrom::Start,
        )
        .unwrap();
    let truth =
        match serde_json::from_str::<ServerMessage>(&probe.take().frames.pop_front().expect("a snapshot").into_text())
            .unwrap()
        {
            ServerMessage::Control(ControlMessage::Snapshot { series, .. }) => series,
            other => panic!("{other:?}"),
        };
    for c in &mut cs {
        if c.outbox.is_none() {
            connect(c, &broker, &mut next_id);
        }
        c.read(&broker, &key, usize::MAX)?;
        let held: Vec<Item> = c.buffer.points().copied().map(Item::Point).collect();
        prop_assert_eq!(&held, &truth, "client state differs from the topic's");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn clients_converge_without_loss_or_duplicates(
        ops in prop::collection::vec(op(3), 1..120),
        history in 1..12usize,
        capacity in 1..6usize,
    ) {
        run(ops, 3, history, capacity)?;
    }
}
