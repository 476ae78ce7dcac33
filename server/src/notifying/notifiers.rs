//! Each node's copy of its tenants' notifying widgets: those that raise collection notifications
//! or have thresholds. Read from the store once per tenant, then held until an edit is announced
//! ([`Notice::Notifiers`](crate::broker::cluster::Notice::Notifiers)) or notices may have been
//! missed; a store that does not answer is not asked again for [`RETRY_AFTER`], so publishes never
//! each wait for it.

use crate::store::Store;
use crate::topic_name::TenantId;
use protocol::dashboard::WidgetDef;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A widget that raises notifications, with the title of its dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Notifier {
    pub dashboard: String,
    pub widget: WidgetDef,
}

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
    pub async fn of(&self, tenant: &TenantId, topic: &str) -> Result<Vec<Notifier>, String> {
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

    /// Whether `tenant`'s `topic` is known to have no notifying widget: a publish then need not
    /// keep its message for them (the common case, decided without waiting).
    pub fn none_for(&self, tenant: &TenantId, topic: &str) -> bool {
        let held = self.held.lock().expect("notifiers lock");
        held.tenants.get(tenant).is_some_and(|by_topic| !by_topic.contains_key(topic))
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
