//! The topic broker: per-topic logs, subscriptions, and fan-out into connection outboxes.
//!
//! One `std::sync::Mutex` per topic guards its log and subscriber list. It is never held across an
//! `await`: publishing appends to the log, encodes the update once, and pushes a shared frame into each
//! subscriber's outbox, all without waiting on any socket. Taking the snapshot and registering a
//! subscriber happen under the same lock, so between the snapshot and the first delta nothing is lost
//! and nothing is repeated.

mod encode;
pub mod position;
pub mod topic_log;

use crate::transport::outbox::{Frame, Outbox};
use app::protocol::{ControlMessage, Point, ServerMessage, TopicKind};
use position::Position;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{SystemTime, UNIX_EPOCH},
};
use topic_log::{Catchup, TopicLog};

#[derive(Debug, Clone, Copy)]
pub struct BrokerConfig {
    /// Messages kept per topic for resuming subscribers.
    pub history_len: usize,
    /// Points a `series` snapshot carries.
    pub snapshot_points: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
}

/// One subscription of one connection.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub connection: u64,
    pub widget: Arc<str>,
    pub outbox: Arc<Outbox>,
}

#[derive(Debug)]
struct Topic {
    name: String,
    kind: TopicKind,
    state: Mutex<TopicState>,
}

#[derive(Debug)]
struct TopicState {
    log: TopicLog,
    subscribers: Vec<Live>,
}

#[derive(Debug)]
struct Live {
    subscriber: Subscriber,
    prefix: Arc<str>,
}

#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
}

impl Broker {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            topics: RwLock::default(),
        }
    }

    /// Creates `name` with a fresh epoch if it does not exist yet.
    pub fn declare(&self, name: &str, kind: TopicKind) {
        let mut topics = self.topics.write().expect("topics lock");
        topics.entry(name.to_owned()).or_insert_with(|| {
            let log = TopicLog::new(new_epoch(), self.config.history_len);
            let state = Mutex::new(TopicState {
                log,
                subscribers: Vec::new(),
            });
            Arc::new(Topic {
                name: name.to_owned(),
                kind,
                state,
            })
        });
    }

    /// Appends `points` as one message and hands it to every subscriber; returns its offset.
    pub fn publish(&self, topic: &str, points: Vec<Point>) -> Result<u64, BrokerError> {
        let topic = self.topic(topic)?;
        let mut state = topic.state.lock().expect("topic lock");
        let entry = state.log.append(now_ms(), points, |position, ts, points| {
            encode::update_body(&topic.name, topic.kind, position, ts, points)
        });
        for live in &state.subscribers {
            live.subscriber.outbox.push_update(Frame::Update {
                widget: live.subscriber.widget.clone(),
                prefix: live.prefix.clone(),
                body: entry.body.clone(),
            });
        }
        Ok(entry.offset)
    }

    /// Starts a subscription. Without `resume_token` (or with one the history cannot honour) the
    /// subscriber first gets a snapshot; with a good one, exactly the messages it missed.
    pub fn subscribe(
        &self,
        topic: &str,
        subscriber: Subscriber,
        resume_token: Option<&str>,
    ) -> Result<(), BrokerError> {
        let topic = self.topic(topic)?;
        let prefix: Arc<str> = encode::widget_prefix(&subscriber.widget).into();
        let mut state = topic.state.lock().expect("topic lock");
        let catchup = resume_token.map(|token| match Position::parse(token) {
            Some(from) => state.log.catch_up(&from),
            None => Catchup::Gap,
        });
        let outbox = &subscriber.outbox;
        match catchup {
            Some(Catchup::Replay(entries)) => {
                for entry in entries {
                    outbox.push_update(Frame::Update {
                        widget: subscriber.widget.clone(),
                        prefix: prefix.clone(),
                        body: entry.body.clone(),
                    });
                }
            }
            Some(Catchup::Gap) => {
                outbox.push(gap_frame(
                    &subscriber.widget,
                    "resume position no longer in history",
                ));
                outbox.push(self.snapshot_frame(&topic, &state.log, &subscriber.widget));
            }
            None => outbox.push(self.snapshot_frame(&topic, &state.log, &subscriber.widget)),
        }
        state
            .subscribers
            .retain(|l| !same(&l.subscriber, &subscriber));
        state.subscribers.push(Live { subscriber, prefix });
        Ok(())
    }

    pub fn unsubscribe(&self, topic: &str, connection: u64, widget: &str) {
        if let Ok(topic) = self.topic(topic) {
            let mut state = topic.state.lock().expect("topic lock");
            state.subscribers.retain(|l| {
                !(l.subscriber.connection == connection && &*l.subscriber.widget == widget)
            });
        }
    }

    /// Heals a subscription whose queue overflowed: a `gap`, then a snapshot, then deltas again.
    pub fn resync(&self, topic: &str, subscriber: &Subscriber) -> Result<(), BrokerError> {
        let topic = self.topic(topic)?;
        let state = topic.state.lock().expect("topic lock");
        let frames = [
            gap_frame(
                &subscriber.widget,
                "updates were dropped because the client read too slowly",
            ),
            self.snapshot_frame(&topic, &state.log, &subscriber.widget),
        ];
        subscriber.outbox.end_lag(&subscriber.widget, frames);
        Ok(())
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        let topics = self.topics.read().expect("topics lock");
        topics
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_owned()))
    }

    fn snapshot_frame(&self, topic: &Topic, log: &TopicLog, widget: &str) -> Frame {
        let message = ServerMessage::Control(ControlMessage::Snapshot {
            widget_id: widget.to_owned(),
            ts: now_ms(),
            series: log.recent_points(self.config.snapshot_points),
            meta: encode::meta(&topic.name, topic.kind, &log.position()),
        });
        Frame::Whole(message.to_json())
    }
}

fn same(a: &Subscriber, b: &Subscriber) -> bool {
    a.connection == b.connection && a.widget == b.widget
}

fn gap_frame(widget: &str, reason: &str) -> Frame {
    let message = ServerMessage::Control(ControlMessage::Gap {
        widget_id: widget.to_owned(),
        reason: reason.to_owned(),
    });
    Frame::Whole(message.to_json())
}

/// A new random epoch: hex, so a resume token stays `epoch.offset`.
fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::Update;

    fn broker(history_len: usize) -> Broker {
        let b = Broker::new(BrokerConfig {
            history_len,
            snapshot_points: 50,
        });
        b.declare("t", TopicKind::Series);
        b
    }

    fn subscriber(widget: &str, capacity: usize) -> Subscriber {
        Subscriber {
            connection: 1,
            widget: widget.into(),
            outbox: Arc::new(Outbox::new(capacity)),
        }
    }

    fn point(v: f64) -> Vec<Point> {
        vec![Point {
            ts: v as i64,
            value: v,
        }]
    }

    fn messages(outbox: &Outbox) -> Vec<ServerMessage> {
        outbox
            .take()
            .frames
            .into_iter()
            .map(|f| serde_json::from_str(&f.into_text()).unwrap())
            .collect()
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
        let b = broker(100);
        b.publish("t", point(1.0)).unwrap();
        let sub = subscriber("w", 100);
        b.subscribe("t", sub.clone(), None).unwrap();
        assert_eq!(b.publish("t", point(2.0)), Ok(2));
        b.publish("t", point(3.0)).unwrap();
        let got = messages(&sub.outbox);
        let ServerMessage::Control(ControlMessage::Snapshot { series, meta, .. }) = &got[0] else {
            panic!("first message must be a snapshot: {got:?}")
        };
        assert_eq!(series, &point(1.0));
        assert_eq!(meta.offset, 1);
        assert_eq!(update_offsets(&got), vec![2, 3]);
    }

    #[test]
    fn resuming_replays_exactly_the_missed_messages() {
        let b = broker(100);
        let first = subscriber("w", 100);
        b.subscribe("t", first.clone(), None).unwrap();
        b.publish("t", point(1.0)).unwrap();
        let got = messages(&first.outbox);
        let ServerMessage::Update(last) = got.last().unwrap() else {
            panic!()
        };
        let token = last.meta.resume_token.clone();
        b.unsubscribe("t", 1, "w");
        for v in 2..=6 {
            b.publish("t", point(v as f64)).unwrap();
        }
        let again = subscriber("w", 100);
        b.subscribe("t", again.clone(), Some(&token)).unwrap();
        b.publish("t", point(7.0)).unwrap();
        let got = messages(&again.outbox);
        assert_eq!(update_offsets(&got), vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(got.len(), 6, "no snapshot when history bridges the gap");
    }

    #[test]
    fn a_token_older_than_history_gets_gap_then_snapshot() {
        let b = broker(2);
        for v in 1..=5 {
            b.publish("t", point(v as f64)).unwrap();
        }
        let sub = subscriber("w", 100);
        let stale = Position {
            epoch: b
                .topic("t")
                .unwrap()
                .state
                .lock()
                .unwrap()
                .log
                .epoch()
                .to_owned(),
            offset: 1,
        };
        b.subscribe("t", sub.clone(), Some(&stale.token())).unwrap();
        let got = messages(&sub.outbox);
        assert!(matches!(
            got[0],
            ServerMessage::Control(ControlMessage::Gap { .. })
        ));
        assert!(
            matches!(&got[1], ServerMessage::Control(ControlMessage::Snapshot { meta, .. }) if meta.offset == 5)
        );
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_forged_token_is_treated_as_a_gap() {
        let b = broker(10);
        let sub = subscriber("w", 10);
        b.subscribe("t", sub.clone(), Some("not-a-token")).unwrap();
        let got = messages(&sub.outbox);
        assert!(matches!(
            got[0],
            ServerMessage::Control(ControlMessage::Gap { .. })
        ));
    }

    #[test]
    fn an_overflowing_subscriber_is_resynced_without_holding_back_others() {
        let b = broker(100);
        let slow = subscriber("slow", 2);
        let fast = Subscriber {
            connection: 2,
            ..subscriber("fast", 100)
        };
        b.subscribe("t", slow.clone(), None).unwrap();
        b.subscribe("t", fast.clone(), None).unwrap();
        for v in 1..=10 {
            b.publish("t", point(v as f64)).unwrap();
        }
        assert_eq!(
            update_offsets(&messages(&fast.outbox)),
            (1..=10).collect::<Vec<_>>()
        );
        let batch = slow.outbox.take();
        assert_eq!(batch.lagging, vec![slow.widget.clone()]);
        b.resync("t", &slow).unwrap();
        b.publish("t", point(11.0)).unwrap();
        let got = messages(&slow.outbox);
        assert!(matches!(
            got[0],
            ServerMessage::Control(ControlMessage::Gap { .. })
        ));
        assert!(
            matches!(&got[1], ServerMessage::Control(ControlMessage::Snapshot { meta, .. }) if meta.offset == 10)
        );
        assert_eq!(update_offsets(&got), vec![11]);
    }

    #[test]
    fn unknown_topics_are_refused() {
        let b = broker(10);
        assert_eq!(
            b.publish("nope", point(1.0)),
            Err(BrokerError::UnknownTopic("nope".into()))
        );
        assert!(b.subscribe("nope", subscriber("w", 1), None).is_err());
    }
}
