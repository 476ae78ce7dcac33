//! What a WebSocket client asks, one message at a time: subscribe, unsubscribe, refresh, resume,
//! ping and activity, each checked (rate, size, topic name, limits) and answered in order through
//! the connection's outbox.

use super::*;

impl Connection {
    pub(super) fn on_message(&mut self, message: Message) -> Option<Ending> {
        let counted = matches!(message, Message::Text(_) | Message::Binary(_));
        if counted && !self.inbound.try_take(std::time::Instant::now()) {
            metrics::counter!(telemetry::MESSAGES_IN, "type" => "rate_limited").increment(1);
            let message = "too many messages; this one was ignored".into();
            self.error(ErrorCode::RateLimited, message, None);
            return None;
        }
        match message {
            Message::Text(text) => match serde_json::from_str::<ClientMessage>(text.as_str()) {
                Ok(message) => {
                    metrics::counter!(telemetry::MESSAGES_IN, "type" => message.kind()).increment(1);
                    self.on_client_message(message)
                }
                Err(e) => {
                    metrics::counter!(telemetry::MESSAGES_IN, "type" => "invalid").increment(1);
                    self.error(ErrorCode::BadMessage, format!("not a valid message: {e}"), None)
                }
            },
            Message::Binary(_) => {
                metrics::counter!(telemetry::MESSAGES_IN, "type" => "invalid").increment(1);
                self.error(ErrorCode::BadMessage, "binary frames are not supported".into(), None)
            }
            Message::Close(_) => return Some(Ending::ClientLeft),
            Message::Ping(_) | Message::Pong(_) => {}
        }
        None
    }

    pub(super) fn on_client_message(&mut self, message: ClientMessage) {
        match message {
            ClientMessage::Ping => self.reply(ControlMessage::Pong { resume_token: Some(self.resume_token()) }),
            ClientMessage::Resume { token } => match self.auth.resume.verify(&token, self.session.user.id) {
                Ok(subscriptions) => {
                    for sub in subscriptions {
                        self.subscribe(sub.widget, sub.topic, sub.position.as_deref());
                    }
                }
                Err(e) => {
                    telemetry::denied("resume_token");
                    self.error(ErrorCode::BadResumeToken, e.to_string(), None)
                }
            },
            ClientMessage::Subscribe { widget_id, topic, resume_token } => {
                self.subscribe(widget_id, topic, resume_token.as_deref())
            }
            ClientMessage::Unsubscribe { widget_id } => match self.subscriptions.remove_entry(widget_id.as_str()) {
                Some((widget, followed)) => {
                    self.broker.unsubscribe(&followed.topic, self.id, &widget);
                    self.outbox.forget(&widget);
                    self.subscription_log.unsubscribed();
                }
                None => self.error(ErrorCode::NotSubscribed, "no such subscription".into(), Some(widget_id)),
            },
            ClientMessage::RequestUpdate { widget_id } => match self.subscriptions.get_key_value(widget_id.as_str()) {
                Some(_) if !self.refreshes.try_take(std::time::Instant::now()) => {
                    telemetry::denied("refresh_rate");
                    let message =
                        format!("at most {} refreshes a minute; the view stays live", self.config.refreshes_per_min);
                    self.error(ErrorCode::RateLimited, message, Some(widget_id))
                }
                Some((widget, followed)) => {
                    // A topic is never retired while it has subscribers; one still waiting to be
                    // created has no snapshot to refresh.
                    let _ = self.broker.refresh(&followed.topic, &self.subscriber(widget));
                }
                None => self.error(ErrorCode::NotSubscribed, "no such subscription".into(), Some(widget_id)),
            },
            ClientMessage::Activity { action, detail } => match presence::check_detail(&detail) {
                Ok(detail) => {
                    if let Err(limited) = self.presence.reported(&self.session.user, action, detail) {
                        self.error(ErrorCode::RateLimited, limited.to_string(), None)
                    }
                }
                Err(message) => self.error(ErrorCode::BadMessage, message, None),
            },
        }
    }

    pub(super) fn subscribe(&mut self, widget_id: String, topic: String, resume_token: Option<&str>) {
        if widget_id.is_empty() || widget_id.len() > MAX_WIDGET_ID_LEN {
            let message = format!("widgetId must be 1 to {MAX_WIDGET_ID_LEN} bytes");
            return self.error(ErrorCode::BadMessage, message, None);
        }
        if self.subscriptions.contains_key(widget_id.as_str()) {
            return self.error(ErrorCode::DuplicateSubscription, "widget already subscribed".into(), Some(widget_id));
        }
        if self.subscriptions.len() >= self.limits.max_subscriptions {
            telemetry::denied("subscriptions_per_connection");
            let message = format!("at most {} subscriptions per connection", self.limits.max_subscriptions);
            return self.error(ErrorCode::LimitExceeded, message, Some(widget_id));
        }
        let name = match TopicName::parse(&topic) {
            Ok(name) => name,
            Err(e) => {
                telemetry::denied("bad_topic");
                self.subscription_log.refused(&topic, &e.to_string());
                return self.error(ErrorCode::BadTopic, e.to_string(), Some(widget_id));
            }
        };
        let key = TopicKey::new(self.session.user.tenant.clone(), name);
        let widget: Arc<str> = widget_id.into();
        let subscribed = match self.broker.subscribe(&key, self.subscriber(&widget), ReadFrom::token(resume_token)) {
            Ok(subscribed) => subscribed,
            Err(e) => {
                telemetry::denied(e.limit_label().unwrap_or("subscribe"));
                self.subscription_log.refused(key.name.as_str(), &e.to_string());
                return self.error(ErrorCode::LimitExceeded, e.to_string(), Some(widget.to_string()));
            }
        };
        let pending = subscribed == Subscribed::Pending;
        tracing::debug!(connection = self.id, %widget, topic = %key, pending, "subscribed");
        self.subscription_log.subscribed(key.name.as_str());
        self.subscriptions.insert(widget, Followed { topic: key, position: None });
    }

    /// Writes what the connection subscribed to since the last summary, as one audit row.
    pub(super) fn audit_subscriptions(&mut self) {
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

    /// A signed token of this connection's subscriptions and positions, valid while the session is.
    pub(super) fn resume_token(&self) -> String {
        let subs = self
            .subscriptions
            .iter()
            .map(|(widget, followed)| ResumedSubscription {
                widget: widget.to_string(),
                topic: followed.topic.name.to_string(),
                position: followed.position.as_ref().map(|p| p.to_string()),
            })
            .collect();
        self.auth.resume.issue(self.session.user.id, self.session.expires_at, subs)
    }

    pub(super) fn subscriber(&self, widget: &Arc<str>) -> Subscriber {
        Subscriber { connection: self.id, widget: widget.clone(), outbox: self.outbox.clone() }
    }

    pub(super) fn reply(&self, message: ControlMessage) {
        self.outbox.push(Frame::Whole(ServerMessage::Control(message).to_json()));
    }

    pub(super) fn error(&self, code: ErrorCode, message: String, widget_id: Option<String>) {
        tracing::debug!(connection = self.id, ?code, %message, "client error");
        metrics::counter!(telemetry::CLIENT_ERRORS, "code" => code.as_str()).increment(1);
        self.reply(ControlMessage::Error { code, message, widget_id });
    }
}
