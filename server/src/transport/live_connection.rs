//! One live connection's life, whatever carries it (a WebSocket, a dashboard's SSE stream, a job's
//! SSE stream): its seat in the user's limit, its registration (so a logout or live updates turned
//! off can end it), its presence, what it follows in the broker, what ends it from outside, the
//! audit of what it subscribed to, and what it gives back when it closes.
//!
//! The transports differ only in how they frame and write: each holds a [`LiveConnection`] and
//! asks it for everything else, so every rule (the audit order, the summary of subscriptions, what
//! a closed connection frees) is written once. The audit order is the same on every transport: the
//! seat, the registration, the session checked again, then `connect ok` (see [`admission::seat`]),
//! then presence.
//!
//! `K` is what a transport keeps per subscription beside its topic: the WebSocket keeps the resume
//! token of the last frame it wrote (for the resume token it hands out); the SSE streams keep
//! nothing (`()`), their positions live in their cursors.

use super::admission::{self, Refusal};
use super::endings;
use super::subscription_log::{SUMMARY_EVERY, SubscriptionLog};
use crate::connections::registry::{Kick, Registration};
use crate::outbox::Outbox;
use crate::presence::{Presence, TooManyReports};
use crate::topic_name::TopicKey;
use crate::{
    AppState,
    auth::Session,
    broker::{Broker, BrokerError, ReadFrom, Subscribed, Subscriber},
    shutdown::ShutdownSignal,
    store::audit::{AuditEntry, Auditor, Outcome},
    telemetry,
};
use axum::http::HeaderMap;
use protocol::ActivityAction;
use protocol::close::Disconnect;
use std::{collections::HashMap, future::Future, sync::Arc};
use tokio::time::Instant;

/// One subscription of a connection: its topic, and what its transport keeps beside it.
#[derive(Debug)]
pub struct Followed<K> {
    pub topic: TopicKey,
    pub kept: K,
}

/// A connection that holds its user's seat; see the module docs.
pub struct LiveConnection<K = ()> {
    /// Unique in this process, whatever the transport.
    pub id: u64,
    pub session: Session,
    /// Where the broker delivers and the transport takes what to write.
    pub outbox: Arc<Outbox>,
    /// `websocket`, `sse` or `job`, for the log.
    transport: &'static str,
    registration: Registration,
    broker: Arc<Broker>,
    presence: Arc<Presence>,
    auditor: Auditor,
    shutdown: ShutdownSignal,
    /// widget id → what it follows (one table: thousands of idle connections each hold one)
    subscriptions: HashMap<Arc<str>, Followed<K>>,
    /// Its subscriptions since the last audit summary, and when that was written.
    subscription_log: SubscriptionLog,
    last_summary: Instant,
}

impl<K> LiveConnection<K> {
    /// Seats `session`'s user (see [`admission::seat`]: the seat, the registration, the session
    /// checked again, the `connect` audit) and shows them online. A refusal gives the session back
    /// with it, for the transport to deny in its own way. `detail` says what connected, for the
    /// audit (`websocket from …`, `sse for dashboard 3 from …`).
    pub async fn open(
        state: &AppState,
        session: Session,
        headers: &HeaderMap,
        transport: &'static str,
        detail: String,
    ) -> Result<Self, (Session, Refusal)> {
        let id = admission::next_connection_id();
        let registration = match admission::seat(state, id, &session, headers, detail).await {
            Ok(registration) => registration,
            Err(refusal) => return Err((session, refusal)),
        };
        state.presence.connected(&session.user, registration.joined());
        tracing::info!(connection = id, transport, user = %session.user.email, "connected");
        Ok(Self {
            id,
            session,
            outbox: Arc::new(Outbox::new(state.config.outbox_capacity)),
            transport,
            registration,
            broker: state.broker.clone(),
            presence: state.presence.clone(),
            auditor: state.auditor.clone(),
            shutdown: state.shutdown.clone(),
            subscriptions: HashMap::new(),
            subscription_log: SubscriptionLog::default(),
            last_summary: Instant::now(),
        })
    }

    /// Completes with what ends the connection from outside: shutdown, a kick, the session's
    /// expiry. Made once and polled on every turn of the transport's loop.
    pub fn ended(&self) -> impl Future<Output = Disconnect> + Send + 'static {
        endings::from_outside(self.shutdown.clone(), self.registration.kick.clone(), self.session.expires_at)
    }

    /// What a blocked write waits for beside the write (with [`Kick::or_expiry`]).
    pub fn kick(&self) -> &Arc<Kick> {
        &self.registration.kick
    }

    /// The broker's handle for one of this connection's widgets.
    pub fn subscriber(&self, widget: &Arc<str>) -> Subscriber {
        Subscriber { connection: self.id, widget: widget.clone(), outbox: self.outbox.clone() }
    }

    /// Follows `topic` under `widget`, starting `from` where the client stood. A refusal (a
    /// tenant-wide limit) is counted and summarised in the audit; the caller tells the client.
    pub fn follow(
        &mut self,
        widget: Arc<str>,
        topic: TopicKey,
        from: ReadFrom,
        kept: K,
    ) -> Result<Subscribed, BrokerError> {
        match self.broker.subscribe(&topic, self.subscriber(&widget), from) {
            Ok(subscribed) => {
                tracing::debug!(connection = self.id, %widget, %topic, ?subscribed, "subscribed");
                self.subscription_log.subscribed(topic.name.as_str());
                self.subscriptions.insert(widget, Followed { topic, kept });
                Ok(subscribed)
            }
            Err(e) => {
                telemetry::denied(e.limit_label().unwrap_or("subscribe"));
                self.subscription_log.refused(topic.name.as_str(), &e.to_string());
                Err(e)
            }
        }
    }

    /// A subscription refused before it reached the broker (a bad topic name), for the audit.
    pub fn refused(&mut self, topic: &str, why: &str) {
        self.subscription_log.refused(topic, why);
    }

    /// Stops following `widget`'s topic and drops what its outbox still held for it.
    pub fn unfollow(&mut self, widget: &str) -> Option<Followed<K>> {
        let (widget, followed) = self.subscriptions.remove_entry(widget)?;
        self.broker.unsubscribe(&followed.topic, self.id, &widget);
        self.outbox.forget(&widget);
        self.subscription_log.unsubscribed();
        Some(followed)
    }

    pub fn followed(&self, widget: &str) -> Option<(&Arc<str>, &Followed<K>)> {
        self.subscriptions.get_key_value(widget)
    }

    pub fn followed_mut(&mut self, widget: &str) -> Option<&mut Followed<K>> {
        self.subscriptions.get_mut(widget)
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = (&Arc<str>, &Followed<K>)> {
        self.subscriptions.iter()
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    /// Queues a fresh snapshot of `widget`'s topic, if it follows one. A topic still waiting to be
    /// created has no snapshot to refresh: its first one is on its way.
    pub fn refresh(&self, widget: &str) {
        if let Some((widget, followed)) = self.subscriptions.get_key_value(widget) {
            let _ = self.broker.refresh(&followed.topic, &self.subscriber(widget));
        }
    }

    /// Asks the broker to resync the widgets whose outbox queue overflowed: each gets a gap and a
    /// snapshot.
    pub fn resync(&self, lagging: impl IntoIterator<Item = Arc<str>>) {
        for widget in lagging {
            if let Some(followed) = self.subscriptions.get(&widget) {
                tracing::debug!(connection = self.id, %widget, "subscriber lagged; resyncing");
                let _ = self.broker.resync(&followed.topic, &self.subscriber(&widget));
            }
        }
    }

    /// What the user says they are doing (see [`Presence::reported`]).
    pub fn report_activity(&self, action: ActivityAction, detail: &str) -> Result<(), TooManyReports> {
        self.presence.reported(&self.session.user, action, detail)
    }

    /// Writes the subscription summary if the last one is [`SUMMARY_EVERY`] old: a connection that
    /// lasts days is not silent in the audit until it closes. Called on each heartbeat.
    pub fn audit_if_due(&mut self) {
        if self.last_summary.elapsed() >= SUMMARY_EVERY {
            self.audit_subscriptions();
        }
    }

    /// Writes what the connection subscribed to since the last summary, as one audit row.
    fn audit_subscriptions(&mut self) {
        self.last_summary = Instant::now();
        let Some(summary) = self.subscription_log.take_summary() else { return };
        self.auditor.record(AuditEntry {
            tenant: Some(self.session.user.tenant.to_string()),
            actor: Some(self.session.user.email.clone()),
            action: "subscriptions",
            // Refusals are in the counts: the row is a summary, never digested away.
            outcome: Outcome::Ok,
            detail: Some(format!("connection {}: {summary}", self.id)),
        });
    }

    /// Frees what the connection held, once its transport has said goodbye: the audit summary,
    /// every subscription, the seat, its presence.
    pub async fn close(mut self) {
        self.audit_subscriptions();
        for (widget, followed) in self.subscriptions.drain() {
            self.broker.unsubscribe(&followed.topic, self.id, &widget);
        }
        let left = self.registration.leave().await;
        self.presence.disconnected(&self.session.user, &left);
        tracing::info!(connection = self.id, transport = self.transport, "disconnected");
    }
}
