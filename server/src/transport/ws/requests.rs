//! What a WebSocket client asks, one message at a time: subscribe, unsubscribe, refresh, resume,
//! ping and activity, each checked (rate, size, topic name, limits) and answered in order through
//! the connection's outbox.

use super::*;
use crate::transport::live_connection::Unreported;

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
            ClientMessage::Resume { token } => match self.auth.resume.verify(&token, self.live.session.user.id) {
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
            ClientMessage::Unsubscribe { widget_id } => {
                if self.live.unfollow(&widget_id).is_none() {
                    self.error(ErrorCode::NotSubscribed, "no such subscription".into(), Some(widget_id))
                }
            }
            ClientMessage::RequestUpdate { widget_id } => {
                if self.live.followed(&widget_id).is_none() {
                    self.error(ErrorCode::NotSubscribed, "no such subscription".into(), Some(widget_id))
                } else if !self.refreshes.try_take(std::time::Instant::now()) {
                    telemetry::denied("refresh_rate");
                    let message =
                        format!("at most {} refreshes a minute; the view stays live", self.config.refreshes_per_min);
                    self.error(ErrorCode::RateLimited, message, Some(widget_id))
                } else {
                    self.live.refresh(&widget_id);
                }
            }
            ClientMessage::Activity { action, detail } => match presence::check_detail(&detail) {
                Ok(detail) => match self.live.report_activity(action, detail) {
                    Ok(()) => {}
                    Err(refused @ Unreported::ReadOnly(_)) => {
                        telemetry::denied("display_read_only");
                        self.error(ErrorCode::Forbidden, refused.to_string(), None)
                    }
                    Err(limited @ Unreported::TooMany(_)) => {
                        self.error(ErrorCode::RateLimited, limited.to_string(), None)
                    }
                },
                Err(message) => self.error(ErrorCode::BadMessage, message, None),
            },
        }
    }

    pub(super) fn subscribe(&mut self, widget_id: String, topic: String, resume_token: Option<&str>) {
        if widget_id.is_empty() || widget_id.len() > MAX_WIDGET_ID_LEN {
            let message = format!("widgetId must be 1 to {MAX_WIDGET_ID_LEN} bytes");
            return self.error(ErrorCode::BadMessage, message, None);
        }
        if self.live.followed(&widget_id).is_some() {
            return self.error(ErrorCode::DuplicateSubscription, "widget already subscribed".into(), Some(widget_id));
        }
        if self.live.subscription_count() >= self.limits.max_subscriptions {
            telemetry::denied("subscriptions_per_connection");
            let message = format!("at most {} subscriptions per connection", self.limits.max_subscriptions);
            return self.error(ErrorCode::LimitExceeded, message, Some(widget_id));
        }
        let name = match TopicName::parse(&topic) {
            Ok(name) => name,
            Err(e) => {
                telemetry::denied("bad_topic");
                self.live.refused(&topic, &e.to_string());
                return self.error(ErrorCode::BadTopic, e.to_string(), Some(widget_id));
            }
        };
        let key = TopicKey::new(self.live.session.user.tenant.clone(), name);
        let widget: Arc<str> = widget_id.into();
        // A topic the rules refuse was answered by `follow` itself.
        if let Err(FollowError::Broker(e)) = self.live.follow(widget.clone(), key, ReadFrom::token(resume_token), None)
        {
            self.error(ErrorCode::LimitExceeded, e.to_string(), Some(widget.to_string()));
        }
    }

    /// A signed token of this connection's subscriptions and positions, valid while the session is.
    pub(super) fn resume_token(&self) -> String {
        let subs = self
            .live
            .subscriptions()
            .map(|(widget, followed)| ResumedSubscription {
                widget: widget.to_string(),
                topic: followed.topic.name.to_string(),
                position: followed.kept.as_ref().map(|p| p.to_string()),
            })
            .collect();
        let session = &self.live.session;
        self.auth.resume.issue(session.user.id, session.expires_at, subs)
    }

    pub(super) fn reply(&self, message: ControlMessage) {
        self.live.outbox.push(Frame::Whole(ServerMessage::Control(message).to_json()));
    }

    pub(super) fn error(&self, code: ErrorCode, message: String, widget_id: Option<String>) {
        tracing::debug!(connection = self.live.id, ?code, %message, "client error");
        metrics::counter!(telemetry::CLIENT_ERRORS, "code" => code.as_str()).increment(1);
        self.reply(ControlMessage::Error { code, message, widget_id });
    }
}
