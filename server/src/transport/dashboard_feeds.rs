//! What the HTTP transports serve: every feed of one stored dashboard (the page's
//! [`page_feeds`](protocol::dashboard::DashboardView::page_feeds)), and where a returning reader starts
//! in each, from whichever form of position it brought.

use crate::connections::cursor::{BadCursor, CursorKeys, Positions, Resume};
use crate::topic_name::{TopicKey, TopicName};
use crate::{
    AppState,
    auth::Session,
    broker::{Broker, ReadFrom},
    http_error::ApiError,
    telemetry,
};
use std::{collections::HashMap, sync::Arc};

/// Positions a `positions=` parameter may carry: more than a dashboard has feeds.
const MAX_POSITIONS: usize = 128;

/// One feed of a dashboard page: the widget id its data is delivered under, and its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub widget: Arc<str>,
    pub topic: TopicKey,
}

/// The feeds of `session`'s tenant's dashboard `id`, each topic ready to be read; 404 when the
/// tenant has no such dashboard.
pub async fn load(state: &AppState, session: &Session, id: i64) -> Result<Vec<Feed>, ApiError> {
    if !session.may_see_dashboard(id) {
        return Err(ApiError::not_found("no such dashboard"));
    }
    let view = state.store.dashboard(&session.user.tenant, id, session.user.id).await.map_err(ApiError::internal)?;
    let view = view.ok_or_else(|| ApiError::not_found("no such dashboard"))?;
    let feeds = view.page_feeds().into_iter().filter_map(|feed| match TopicName::parse(&feed.topic) {
        Ok(name) => {
            let topic = TopicKey::new(session.user.tenant.clone(), name);
            Some(Feed { widget: feed.widget_id.into(), topic })
        }
        Err(e) => {
            // Stored topics were checked when the widget was added; this would be a bug.
            tracing::error!(dashboard = id, topic = %feed.topic, error = %e, "stored widget has a bad topic");
            None
        }
    });
    let feeds: Vec<Feed> = feeds.collect();
    // Positions are judged against the topics as they stand: on a node that does not hold one yet
    // (another node served this reader before), it is loaded first.
    futures_util::future::join_all(feeds.iter().map(|feed| state.engine.load_current(feed.topic.clone()))).await;
    Ok(feeds)
}

/// Where a reader says it stands, in one of the forms the transports accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Starts {
    /// Nowhere: every feed starts with a snapshot.
    Fresh,
    /// A cursor this server signed (an SSE event id, a polling cursor).
    Cursor(Positions),
    /// A cursor that did not verify: every feed gets `gap` and a snapshot.
    Forged,
    /// Per-widget resume tokens, as the WebSocket's `meta.resumeToken` (carried over from another
    /// transport).
    Tokens(HashMap<String, String>),
    /// Everything after this time (ms since the Unix epoch).
    Since(i64),
}

/// Where one feed starts (owned, to outlive the request's parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Fresh,
    Token(String),
    Since(i64),
    Lost,
}

impl Start {
    pub fn read_from(&self) -> ReadFrom<'_> {
        match self {
            Start::Fresh => ReadFrom::Start,
            Start::Token(token) => ReadFrom::Token(token),
            Start::Since(ms) => ReadFrom::Time(*ms),
            Start::Lost => ReadFrom::Lost,
        }
    }
}

impl Starts {
    /// From a signed cursor; a bad one is counted and treated as lost positions.
    pub fn from_cursor(keys: &CursorKeys, dashboard: i64, cursor: &str) -> Self {
        match keys.decode(dashboard, cursor) {
            Ok(positions) => Starts::Cursor(positions),
            Err(BadCursor) => {
                metrics::counter!(telemetry::SSE_ERRORS, "reason" => "bad_cursor").increment(1);
                Starts::Forged
            }
        }
    }

    /// From `positions=w1:token,w2:token`; `Err` with a message when it does not parse.
    pub fn from_tokens(list: &str) -> Result<Self, String> {
        let mut tokens = HashMap::new();
        for pair in list.split(',').filter(|p| !p.is_empty()) {
            let (widget, token) =
                pair.rsplit_once(':').ok_or_else(|| format!("positions: {pair:?} is not widget:resumeToken"))?;
            tokens.insert(widget.to_owned(), token.to_owned());
            if tokens.len() > MAX_POSITIONS {
                return Err(format!("positions: at most {MAX_POSITIONS}"));
            }
        }
        Ok(Starts::Tokens(tokens))
    }

    /// Where `feed` starts.
    pub fn of(&self, feed: &Feed, broker: &Broker) -> Start {
        match self {
            Starts::Fresh => Start::Fresh,
            Starts::Forged => Start::Lost,
            Starts::Since(ms) => Start::Since(*ms),
            Starts::Tokens(tokens) => tokens.get(&*feed.widget).map_or(Start::Fresh, |t| Start::Token(t.clone())),
            Starts::Cursor(positions) => match positions.resume(&feed.widget, broker.epoch(&feed.topic).as_deref()) {
                Some(Resume::At(token)) => Start::Token(token),
                Some(Resume::Lost) => Start::Lost,
                None => Start::Fresh,
            },
        }
    }

    /// Whether the reader came back with a stream cursor (`Last-Event-ID`): an SSE reconnection.
    pub fn is_last_event_id(&self) -> bool {
        matches!(self, Starts::Cursor(_) | Starts::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_as_widget_and_token_pairs() {
        let Ok(Starts::Tokens(tokens)) = Starts::from_tokens("w1:ab.7,notification-center:cd.0,") else { panic!() };
        assert_eq!(tokens.get("w1").map(String::as_str), Some("ab.7"));
        assert_eq!(tokens.get("notification-center").map(String::as_str), Some("cd.0"));
        assert!(Starts::from_tokens("w1").is_err());
        let many = (0..200).map(|i| format!("w{i}:ab.1")).collect::<Vec<_>>().join(",");
        assert!(Starts::from_tokens(&many).is_err());
    }
}
