//! Notifications the server raises from what is published, onto the notification centre's topic
//! ([`NOTIFICATIONS_TOPIC`]):
//!
//! - **collection notifications**: a widget showing a collection raises one when a document is
//!   created, updated or deleted, as its admin chose ([`protocol::collection_notify`],
//!   [`collection`]);
//! - **threshold alerts**: a KPI tile's key or a chart's series whose value stays past a warning or
//!   critical bound for the threshold's time, and when it comes back ([`protocol::thresholds`],
//!   [`alerts`]). Each alert is also kept in the widget's history (`store::alerts`).
//!
//! They are raised on the server, where each message is published, not in the pages that show
//! the widget: so they reach the user's every tab (on whatever page), are in the centre's history
//! after a reload, are raised once however many nodes or pages there are, and are counted
//! (`livedash_collection_notifications_total`, `livedash_alerts_total`). Whether an upsert created
//! its document is known only where the state changes, so the engine reports it
//! ([`Published::created`]); an alert's state is kept once for the deployment and moved by
//! compare-and-set ([`alert_states`]), so two nodes never raise the same alert.
//!
//! [`NotifyingEngine`] wraps the engine every publish goes through (HTTP, Kafka, the demo feed),
//! so no ingest can skip it. Everything on the notifications topic reaches all of its readers
//! alike, so a topic is told there only if each of them may read it, and without the fields any
//! of them may not see ([`permissions::retold`], the check the admin API makes too); when the
//! topic rules forbid it, the notifications are withheld and counted, never sent.
//!
//! Each node keeps the tenants' notifying widgets in memory ([`Notifiers`]).

pub mod alert_states;
pub mod alerts;
pub mod collection;
pub mod notifiers;

use crate::broker::BrokerError;
use crate::broker::engine::{Engine, Published, Source};
use crate::clock::now_ms;
use crate::permissions::{self, Permissions, mask::Hidden};
use crate::store::Store;
use crate::telemetry;
use crate::topic_name::{TopicKey, TopicName};
use alert_states::AlertStates;
use alerts::Alert;
use collection::Message;
use futures_util::future::BoxFuture;
pub use notifiers::{Notifier, Notifiers};
use protocol::thresholds::{AlertRecord, Threshold};
use protocol::topics::NOTIFICATIONS_TOPIC;
use protocol::{Event, Item, TopicKind};
use std::sync::Arc;

/// The engine every publish goes through, raising what each message asks for after it is
/// published (so a notification follows the change it tells of).
pub struct NotifyingEngine {
    inner: Arc<dyn Engine>,
    notifiers: Arc<Notifiers>,
    permissions: Arc<Permissions>,
    alert_states: Arc<dyn AlertStates>,
    store: Store,
}

/// Why nothing was told.
enum Untold {
    Withheld(String),
    Failed(String),
}

impl NotifyingEngine {
    pub fn new(
        inner: Arc<dyn Engine>,
        notifiers: Arc<Notifiers>,
        permissions: Arc<Permissions>,
        alert_states: Arc<dyn AlertStates>,
        store: Store,
    ) -> Self {
        Self { inner, notifiers, permissions, alert_states, store }
    }

    /// Raises what `items`, just published on `key` at `published`, ask of the topic's notifying
    /// widgets, and counts it.
    async fn raise(&self, key: &TopicKey, kind: TopicKind, items: &[Item], published: &Published) {
        let notifiers = match self.notifiers.of(&key.tenant, key.name.as_str()).await {
            Ok(notifiers) if notifiers.is_empty() => return,
            Ok(notifiers) => notifiers,
            Err(error) => {
                tracing::warn!(topic = %key, %error, "could not read the notifying widgets");
                let metric =
                    if kind == TopicKind::Collection { telemetry::COLLECTION_NOTIFICATIONS } else { telemetry::ALERTS };
                return metrics::counter!(metric, "outcome" => "failed").increment(1);
            }
        };
        match kind {
            TopicKind::Collection => self.raise_collection(key, items, published, &notifiers).await,
            TopicKind::Metrics | TopicKind::Series => self.raise_alerts(key, kind, items, &notifiers).await,
            TopicKind::Events => {}
        }
    }

    async fn raise_collection(&self, key: &TopicKey, items: &[Item], published: &Published, notifiers: &[Notifier]) {
        let told = match self.retold(key).await {
            Ok(hidden) => {
                let message =
                    Message { topic: key.name.as_str(), offset: published.offset, items, created: &published.created };
                let events = collection::raise(notifiers, message, hidden.as_ref(), now_ms());
                let raised = events.len() as u64;
                self.tell(key, events).await.map(|()| raised)
            }
            Err(untold) => Err(untold),
        };
        count(telemetry::COLLECTION_NOTIFICATIONS, key, told);
    }

    /// Weighs the message's values against every threshold of the topic's widgets; each change of
    /// state is kept in its widget's history and told.
    async fn raise_alerts(&self, key: &TopicKey, kind: TopicKind, items: &[Item], notifiers: &[Notifier]) {
        let at = now_ms();
        let mut changed: Vec<(&Notifier, &Threshold, Alert)> = Vec::new();
        for notifier in notifiers {
            for threshold in &notifier.widget.thresholds {
                let values = alerts::values(threshold, kind, items);
                if values.is_empty() {
                    continue;
                }
                let state_key = format!("{}:{}", key.tenant, alerts::state_key(notifier.widget.id, threshold));
                match alert_states::observe(&*self.alert_states, &state_key, threshold, at, &values).await {
                    Ok(alerts) => changed.extend(alerts.into_iter().map(|alert| (notifier, threshold, alert))),
                    Err(error) => count(telemetry::ALERTS, key, Err(Untold::Failed(error))),
                }
            }
        }
        if changed.is_empty() {
            return;
        }
        for (notifier, threshold, alert) in &changed {
            self.record(key, notifier, threshold, alert).await;
        }
        let told = match self.retold(key).await {
            Ok(hidden) => {
                let events: Vec<Event> = changed
                    .iter()
                    .filter_map(|(notifier, threshold, alert)| {
                        alerts::event(notifier, threshold, alert, hidden.as_ref())
                    })
                    .collect();
                let withheld = changed.len() - events.len();
                if withheld > 0 {
                    let why = format!("{withheld} alerts of keys hidden from a reader of {NOTIFICATIONS_TOPIC}");
                    count(telemetry::ALERTS, key, Err(Untold::Withheld(why)));
                }
                let raised = events.len() as u64;
                self.tell(key, events).await.map(|()| raised)
            }
            Err(untold) => Err(untold),
        };
        count(telemetry::ALERTS, key, told);
    }

    /// Keeps an alert in its widget's history; a history that cannot be written is logged and
    /// counted, never dropped silently.
    async fn record(&self, key: &TopicKey, notifier: &Notifier, threshold: &Threshold, alert: &Alert) {
        let record = AlertRecord {
            key: threshold.key.clone(),
            from: alert.transition.from,
            to: alert.transition.to,
            value: alert.value,
            since: alert.transition.since,
            at: alert.at,
        };
        if let Err(error) = self.store.record_alert(notifier.widget.id, &record).await {
            tracing::error!(topic = %key, widget = notifier.widget.id, %error, ?record, "could not keep an alert in its history");
            metrics::counter!(telemetry::ALERTS, "outcome" => "unrecorded").increment(1);
        }
    }

    /// The fields of `key`'s topic that the notifications topic may not carry, or why it may not
    /// tell of the topic at all.
    async fn retold(&self, key: &TopicKey) -> Result<Option<Hidden>, Untold> {
        let target = TopicName::parse(NOTIFICATIONS_TOPIC).expect("the notifications topic is a topic name");
        let rules = self.permissions.of(&key.tenant).await.map_err(|e| Untold::Failed(e.to_string()))?;
        permissions::retold(&rules, &key.name, &target).map_err(|refused| Untold::Withheld(refused.to_string()))
    }

    /// Publishes `events` on the tenant's notifications topic.
    async fn tell(&self, key: &TopicKey, events: Vec<Event>) -> Result<(), Untold> {
        if events.is_empty() {
            return Ok(());
        }
        let target = TopicName::parse(NOTIFICATIONS_TOPIC).expect("the notifications topic is a topic name");
        let items = events.into_iter().map(Item::Event).collect();
        let target = TopicKey::new(key.tenant.clone(), target);
        self.inner
            .publish(target, TopicKind::Events, items)
            .await
            .map(|_| ())
            .map_err(|e| Untold::Failed(e.to_string()))
    }
}

/// Counts what was told (`raised`, by how many) or why not (`withheld`, `failed`), and logs the
/// latter.
fn count(metric: &'static str, key: &TopicKey, told: Result<u64, Untold>) {
    let (outcome, n) = match told {
        Ok(0) => return,
        Ok(raised) => ("raised", raised),
        Err(Untold::Withheld(why)) => {
            tracing::warn!(topic = %key, reason = %why, "notifications withheld");
            ("withheld", 1)
        }
        Err(Untold::Failed(error)) => {
            tracing::warn!(topic = %key, %error, "could not raise notifications");
            ("failed", 1)
        }
    };
    metrics::counter!(metric, "outcome" => outcome).increment(n);
}

impl Engine for NotifyingEngine {
    fn publish_message(
        &self,
        key: TopicKey,
        kind: TopicKind,
        items: Vec<Item>,
        source: Option<Source>,
    ) -> BoxFuture<'_, Result<Option<Published>, BrokerError>> {
        // Events raise nothing, and most topics have no notifying widget: those keep no copy of
        // their message.
        if kind == TopicKind::Events || self.notifiers.none_for(&key.tenant, key.name.as_str()) {
            return self.inner.publish_message(key, kind, items, source);
        }
        // Called now, not in the future: an engine that publishes at once (memory) keeps the
        // order of callers that do not wait.
        let published = self.inner.publish_message(key.clone(), kind, items.clone(), source);
        Box::pin(async move {
            let published = published.await?;
            if let Some(published) = &published {
                self.raise(&key, kind, &items, published).await;
            }
            Ok(published)
        })
    }

    fn declare(&self, key: TopicKey, kind: TopicKind) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.inner.declare(key, kind)
    }

    fn load_current(&self, key: TopicKey) -> BoxFuture<'_, ()> {
        self.inner.load_current(key)
    }

    fn ready(&self) -> bool {
        self.inner.ready()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
