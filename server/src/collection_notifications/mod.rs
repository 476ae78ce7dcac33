//! Collection notifications: a widget showing a collection raises a notification when a document
//! is created, updated or deleted, as its admin chose ([`protocol::collection_notify`]).
//!
//! They are raised on the server, where each change is published, not in the pages that show the
//! collection: so they reach the user's every tab (on whatever page, through the notification
//! centre's topic, [`NOTIFICATIONS_TOPIC`]), are in the centre's history after a reload, are
//! raised once however many nodes or pages there are, and are counted
//! (`livedash_collection_notifications_total`). Whether an upsert created its document is known
//! only where the state changes, so the engine reports it ([`Published::created`]).
//!
//! [`NotifyingEngine`] wraps the engine every publish goes through (HTTP, Kafka, the demo feed),
//! so no ingest can skip it. Everything on the notifications topic reaches all of its readers
//! alike, so a collection is told there only if each of them may read it, and without the fields
//! any of them may not see ([`permissions::retold`], the check the admin API makes too); when the
//! topic rules forbid it, the notifications are withheld and counted, never sent.
//!
//! Each node keeps the tenants' notifying widgets in memory ([`Notifiers`]); an edit is announced
//! ([`Notice::CollectionNotify`](crate::broker::cluster::Notice::CollectionNotify)) and every node
//! reads them again.

pub mod raise;

use crate::broker::BrokerError;
use crate::broker::engine::{Engine, Published, Source};
use crate::clock::now_ms;
use crate::permissions::{self, Permissions};
use crate::store::Store;
use crate::telemetry;
use crate::topic_name::{TenantId, TopicKey, TopicName};
use futures_util::future::BoxFuture;
use protocol::topics::NOTIFICATIONS_TOPIC;
use protocol::{Item, TopicKind};
use raise::{Message, Notifier};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// The tenants' notifying widgets, by topic, as this node holds them.
#[derive(Debug)]
pub struct Notifiers {
    store: Store,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    tenants: HashMap<TenantId, Arc<HashMap<String, Vec<Notifier>>>>,
    /// Grows with every change heard of: a read that started before one is not kept.
    generation: u64,
    /// Tenants whose read failed, and until when it is not tried again: while the store is down,
    /// collection publishes must not each wait for it to time out.
    failed: HashMap<TenantId, Instant>,
}

/// How long a node waits before asking a store that did not answer for a tenant's notifiers again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl Notifiers {
    pub fn new(store: Store) -> Self {
        Self { store, held: Mutex::default() }
    }

    /// The tenant's notifying widgets of `topic`: as held, or read from the store first.
    /// `Err` with the store's failure (or a recent one, not asked again for [`RETRY_AFTER`]).
    async fn of(&self, tenant: &TenantId, topic: &str) -> Result<Vec<Notifier>, String> {
        let (held, generation) = {
            let mut held = self.held.lock().expect("notifiers lock");
            let now = Instant::now();
            held.failed.retain(|_, until| *until > now);
            if held.failed.contains_key(tenant) {
                return Err(format!("the store did not answer less than {RETRY_AFTER:?} ago"));
            }
            (held.tenants.get(tenant).cloned(), held.generation)
        };
        let by_topic = match held {
            Some(by_topic) => by_topic,
            None => {
                let widgets = match self.store.notifying_widgets(tenant).await {
                    Ok(widgets) => widgets,
                    Err(e) => {
                        let retry = Instant::now() + RETRY_AFTER;
                        self.held.lock().expect("notifiers lock").failed.insert(tenant.clone(), retry);
                        return Err(e.to_string());
                    }
                };
                let mut by_topic: HashMap<String, Vec<Notifier>> = HashMap::new();
                for (dashboard, widget) in widgets {
                    by_topic.entry(widget.topic.clone()).or_default().push(Notifier { dashboard, widget });
                }
                let by_topic = Arc::new(by_topic);
                let mut held = self.held.lock().expect("notifiers lock");
                if held.generation == generation {
                    held.tenants.insert(tenant.clone(), by_topic.clone());
                }
                by_topic
            }
        };
        Ok(by_topic.get(topic).cloned().unwrap_or_default())
    }

    /// Forgets what it holds of `tenant` (all tenants with `None`): they were edited, here or on
    /// another node, or notices may have been missed.
    pub fn forget(&self, tenant: Option<&TenantId>) {
        let mut held = self.held.lock().expect("notifiers lock");
        held.generation += 1;
        match tenant {
            Some(tenant) => {
                held.tenants.remove(tenant);
                held.failed.remove(tenant);
            }
            None => {
                held.tenants.clear();
                held.failed.clear();
            }
        }
    }
}

/// The engine every publish goes through, raising the notifications of each collection message
/// after it is published (so they follow the change they tell of).
pub struct NotifyingEngine {
    inner: Arc<dyn Engine>,
    notifiers: Arc<Notifiers>,
    permissions: Arc<Permissions>,
}

impl NotifyingEngine {
    pub fn new(inner: Arc<dyn Engine>, notifiers: Arc<Notifiers>, permissions: Arc<Permissions>) -> Self {
        Self { inner, notifiers, permissions }
    }

    async fn raise(&self, key: &TopicKey, items: &[Item], published: &Published) {
        let outcome = self.try_raise(key, items, published).await;
        let (outcome, count) = match outcome {
            Ok(0) => return,
            Ok(raised) => ("raised", raised as u64),
            Err(Unraised::Withheld(refused)) => {
                tracing::warn!(topic = %key, reason = %refused, "collection notifications withheld");
                ("withheld", 1)
            }
            Err(Unraised::Failed(error)) => {
                tracing::warn!(topic = %key, %error, "could not raise collection notifications");
                ("failed", 1)
            }
        };
        metrics::counter!(telemetry::COLLECTION_NOTIFICATIONS, "outcome" => outcome).increment(count);
    }

    /// How many it raised.
    async fn try_raise(&self, key: &TopicKey, items: &[Item], published: &Published) -> Result<usize, Unraised> {
        let notifiers = self.notifiers.of(&key.tenant, key.name.as_str()).await.map_err(Unraised::Failed)?;
        if notifiers.is_empty() {
            return Ok(0);
        }
        let target = TopicName::parse(NOTIFICATIONS_TOPIC).expect("the notifications topic is a topic name");
        let rules = self.permissions.of(&key.tenant).await.map_err(|e| Unraised::Failed(e.to_string()))?;
        let hidden = permissions::retold(&rules, &key.name, &target).map_err(Unraised::Withheld)?;
        let message =
            Message { topic: key.name.as_str(), offset: published.offset, items, created: &published.created };
        let events = raise::raise(&notifiers, message, hidden.as_ref(), now_ms());
        if events.is_empty() {
            return Ok(0);
        }
        let raised = events.len();
        let items = events.into_iter().map(Item::Event).collect();
        let target = TopicKey::new(key.tenant.clone(), target);
        self.inner.publish(target, TopicKind::Events, items).await.map_err(|e| Unraised::Failed(e.to_string()))?;
        Ok(raised)
    }
}

enum Unraised {
    Withheld(permissions::Overheard),
    Failed(String),
}

impl Engine for NotifyingEngine {
    fn publish_message(
        &self,
        key: TopicKey,
        kind: TopicKind,
        items: Vec<Item>,
        source: Option<Source>,
    ) -> BoxFuture<'_, Result<Option<Published>, BrokerError>> {
        if kind != TopicKind::Collection {
            return self.inner.publish_message(key, kind, items, source);
        }
        // Called now, not in the future: an engine that publishes at once (memory) keeps the
        // order of callers that do not wait.
        let published = self.inner.publish_message(key.clone(), kind, items.clone(), source);
        Box::pin(async move {
            let published = published.await?;
            if let Some(published) = &published {
                self.raise(&key, &items, published).await;
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
