//! One live connection's life, whatever carries it (a WebSocket, a dashboard's SSE stream, a job's
//! SSE stream): its seat in the user's limit, its registration (so a logout or live updates turned
//! off can end it), its presence, what it follows in the broker and whether the tenant's topic
//! rules let it (see [`crate::permissions`]), what ends it from outside, the audit of what it
//! subscribed to, and what it gives back when it closes.
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
use crate::outbox::{Batch, Outbox};
use crate::permissions::{self, Forbidden, Permissions, mask::Hidden};
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
use protocol::close::{Disconnect, SERVER_ERROR};
use protocol::topic_rules::TopicRules;
use std::sync::atomic::Ordering;
use std::{collections::HashMap, future::Future, sync::Arc};
use tokio::time::Instant;

/// One subscription of a connection: its topic, the fields its user may not see of it, and what
/// its transport keeps beside it.
#[derive(Debug)]
pub struct Followed<K> {
    pub topic: TopicKey,
    pub hidden: Option<Arc<Hidden>>,
    pub kept: K,
}

/// Why an activity report was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Unreported {
    #[error(transparent)]
    ReadOnly(#[from] crate::auth::ReadOnly),
    #[error(transparent)]
    TooMany(#[from] TooManyReports),
}

/// Why a subscription was not made.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The topic rules refuse it; the client has been told (a `forbidden` error for the widget).
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// A tenant-wide limit; the caller tells the client.
    #[error(transparent)]
    Broker(#[from] BrokerError),
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
    permissions: Arc<Permissions>,
    /// The tenant's topic rules as its subscriptions were last checked against.
    rules: Arc<TopicRules>,
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
        let rules = match state.permissions.of(&session.user.tenant).await {
            Ok(rules) => rules,
            Err(e) => {
                tracing::error!(error = %e, "could not read the topic rules");
                return Err((session, Refusal::new(SERVER_ERROR, "server error", "server_error")));
            }
        };
        let outbox = Arc::new(match (&state.write_tick, transport) {
            (Some(tick), "websocket") => Outbox::paced(state.config.outbox_capacity, tick.clone()),
            _ => Outbox::new(state.config.outbox_capacity),
        });
        let registration = match admission::seat(state, id, &session, &outbox, headers, detail).await {
            Ok(registration) => registration,
            Err(refusal) => return Err((session, refusal)),
        };
        // Rules that changed between the read and the registration flagged the connections then
        // registered, not this one: it checks them before it writes anything.
        if state.permissions.held(&session.user.tenant).is_some_and(|held| held.version != rules.version) {
            registration.rules_changed.store(true, Ordering::Release);
        }
        state.presence.connected(&session.user, registration.joined());
        tracing::info!(connection = id, transport, user = %session.user.email, "connected");
        Ok(Self {
            id,
            session,
            outbox,
            transport,
            registration,
            broker: state.broker.clone(),
            permissions: state.permissions.clone(),
            rules,
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
    fn subscriber(&self, widget: &Arc<str>, hidden: Option<Arc<Hidden>>) -> Subscriber {
        Subscriber { connection: self.id, widget: widget.clone(), outbox: self.outbox.clone(), hidden }
    }

    /// Follows `topic` under `widget`, starting `from` where the client stood, if the topic rules
    /// let the user read it (without the fields they hide). A refusal is counted and summarised in
    /// the audit; one by the rules is told to the client here (in order with the rest of its
    /// frames), one by a tenant-wide limit by the caller.
    pub fn follow(
        &mut self,
        widget: Arc<str>,
        topic: TopicKey,
        from: ReadFrom,
        kept: K,
    ) -> Result<Subscribed, FollowError> {
        let hidden = match permissions::check_session(&self.rules, &self.session, &topic.name) {
            Ok(hidden) => hidden,
            Err(forbidden) => {
                self.refuse(&widget, &forbidden);
                return Err(forbidden.into());
            }
        };
        match self.broker.subscribe(&topic, self.subscriber(&widget, hidden.clone()), from) {
            Ok(subscribed) => {
                tracing::debug!(connection = self.id, %widget, %topic, ?subscribed, "subscribed");
                self.subscription_log.subscribed(topic.name.as_str());
                self.subscriptions.insert(widget, Followed { topic, hidden, kept });
                Ok(subscribed)
            }
            Err(e) => {
                telemetry::denied(e.limit_label().unwrap_or("subscribe"));
                self.subscription_log.refused(topic.name.as_str(), &e.to_string());
                Err(e.into())
            }
        }
    }

    /// Tells the client the rules refuse `widget`'s topic, counts and logs it.
    fn refuse(&mut self, widget: &Arc<str>, forbidden: &Forbidden) {
        telemetry::denied("topic_rules");
        tracing::debug!(connection = self.id, %widget, topic = %forbidden.topic, "subscription forbidden");
        self.subscription_log.refused(&forbidden.topic, &forbidden.to_string());
        self.outbox.push(forbidden.frame(widget));
    }

    /// What to write now: everything queued, after the subscriptions were checked against the
    /// tenant's topic rules if they changed since (the outbox was woken for it). A subscription
    /// the new rules refuse ends with a `forbidden` error; one whose hidden fields changed starts
    /// again from a snapshot, filtered the new way (nothing queued under the old rules is sent).
    pub fn take(&mut self) -> Batch {
        if self.registration.rules_changed.swap(false, Ordering::AcqRel) {
            self.check_rules_again();
        }
        self.outbox.take()
    }

    fn check_rules_again(&mut self) {
        let Some(rules) = self.permissions.held(&self.session.user.tenant) else { return };
        if rules.version == self.rules.version {
            return;
        }
        self.rules = rules;
        let changed: Vec<(Arc<str>, permissions::Checked)> = self
            .subscriptions
            .iter()
            .filter_map(|(widget, followed)| {
                let now = permissions::check_session(&self.rules, &self.session, &followed.topic.name);
                let moved = now.as_ref().map_or(true, |hidden| *hidden != followed.hidden);
                moved.then(|| (widget.clone(), now))
            })
            .collect();
        for (widget, now) in changed {
            let Some(followed) = self.unfollow(&widget) else { continue };
            match now {
                Err(forbidden) => self.refuse(&widget, &forbidden),
                Ok(_) => {
                    // Checked again by `follow`, against the same rules.
                    let _ = self.follow(widget, followed.topic, ReadFrom::Start, followed.kept);
                }
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
            let _ = self.broker.refresh(&followed.topic, &self.subscriber(widget, followed.hidden.clone()));
        }
    }

    /// Asks the broker to resync the widgets whose outbox queue overflowed: each gets a gap and a
    /// snapshot.
    pub fn resync(&self, lagging: impl IntoIterator<Item = Arc<str>>) {
        for widget in lagging {
            if let Some(followed) = self.subscriptions.get(&widget) {
                tracing::debug!(connection = self.id, %widget, "subscriber lagged; resyncing");
                let _ = self.broker.resync(&followed.topic, &self.subscriber(&widget, followed.hidden.clone()));
            }
        }
    }

    /// What the user says they are doing (see [`Presence::reported`]).
    /// Refused for a display session, which changes nothing (not even what others see of it).
    pub fn report_activity(&self, action: ActivityAction, detail: &str) -> Result<(), Unreported> {
        self.session.may_write()?;
        Ok(self.presence.reported(&self.session.user, action, detail)?)
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
