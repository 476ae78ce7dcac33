//! `GET /api/v1/dashboards/{id}/updates?since=…`: the polling transport, for networks where
//! neither WebSockets nor SSE get through.
//!
//! Each answer holds, for every feed of the dashboard, the messages a WebSocket would have sent
//! since the reader's position, and a new cursor. Nothing is kept per reader between calls: the
//! cursor says where the reader stands, so any node can answer the next poll, and a poll when
//! nothing changed costs a look at each topic's offset and a small JSON. Same session and Origin
//! rule as the streams; the tenant's live mode lets polls in unless it is `off`, and each answer
//! says the mode (`liveMode`), which is how a polling page learns that polling is the operator's
//! choice and when that choice is lifted. Polls are rate-limited per user (429 with `Retry-After`).
//! The tenant's topic rules apply as on the streams: a feed whose topic the user may not read gets
//! a `forbidden` error in place of its messages, on every poll, and the others come without the
//! fields the user may not see.

use super::{
    admission::{self, OriginRule},
    dashboard_feeds::{self, Start, Starts},
};
use crate::connections::live_mode_gate::Carrier;
use crate::extract::{ApiPath, ApiQuery};
use crate::outbox::Frame;
use crate::permissions;
use crate::{AppState, broker::position::Position, client_addr::ClientAddr, http_error::ApiError, telemetry};
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use protocol::{ErrorBody, LiveMode, PollAnswer};
use serde::Deserialize;
use std::{collections::BTreeMap, sync::Arc};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollParams {
    /// A cursor from an earlier answer or SSE event id, or a time in ms since the Unix epoch.
    since: Option<String>,
    /// Per-widget resume tokens (`w1:epoch.offset,…`), to carry positions over from another
    /// transport.
    positions: Option<String>,
    /// Only these widgets (comma-separated ids), e.g. for one widget's manual refresh.
    widgets: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/dashboards/{id}/updates", tag = "live", params(("id" = i64, Path, description = "The dashboard"), PollParams),
    description = "Polling: what changed in each of the dashboard's feeds since a cursor, and the cursor to ask from next time (see docs/protocol.md).",
    responses(
        (status = 200, description = "The changes, and the next cursor", body = PollAnswer),
        (status = 400, description = "A malformed cursor, position list or widget list", body = ErrorBody),
        (status = 403, description = "A foreign `Origin`, or the tenant's live mode is `off`", body = ErrorBody),
        (status = 404, description = "No such dashboard for this tenant", body = ErrorBody),
        (status = 429, description = "More polls a minute than `LIVEDASH_POLLS_PER_MIN`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    )
)]
pub async fn updates(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<PollParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let refused = |refusal: admission::Refusal| {
        admission::deny(&state, None, peer, &refusal);
        refusal.to_api_error()
    };
    admission::check_origin(&state, &headers, OriginRule::IfPresent).map_err(refused)?;
    let (session, mode) = admission::check_session(&state, &headers, Carrier::Poll).await.map_err(refused)?;
    if let Err(wait) = state.limiters.polls_by_user.check(&session.user.id, std::time::Instant::now()) {
        telemetry::denied("polls_per_user");
        let max = state.config.polls_per_min;
        let error = ApiError::limit("polls_per_user", max as u64, format!("at most {max} polls a minute"));
        return Err(ApiError { retry_after: Some(wait.ceil().max(1.0) as u64), ..error });
    }
    let feeds = dashboard_feeds::load(&state, &session, id).await?;
    let rules = state.permissions.of(&session.user.tenant).await.map_err(ApiError::internal)?;
    let starts = match (&params.since, &params.positions) {
        (Some(since), _) if !since.is_empty() && since.bytes().all(|b| b.is_ascii_digit()) => {
            Starts::Since(since.parse().map_err(|_| ApiError::bad_request("since: not a time in ms"))?)
        }
        (Some(cursor), _) if !cursor.is_empty() => Starts::from_cursor(&state.cursors, id, cursor),
        (_, Some(list)) => Starts::from_tokens(list).map_err(ApiError::bad_request)?,
        _ => Starts::Fresh,
    };
    let only: Option<Vec<&str>> = params.widgets.as_deref().map(|w| w.split(',').collect());

    let mut positions: BTreeMap<Arc<str>, Position> = BTreeMap::new();
    let mut widgets = Vec::new();
    for feed in &feeds {
        let start = starts.of(feed, &state.broker);
        if only.as_ref().is_some_and(|only| !only.contains(&&*feed.widget)) {
            // Not asked about: it stays where it was.
            if let Start::Token(token) = &start
                && let Some(position) = Position::parse(token)
            {
                positions.insert(feed.widget.clone(), position);
            }
            continue;
        }
        let hidden = match permissions::check_session(&rules, &session, &feed.topic.name) {
            Ok(hidden) => hidden,
            Err(forbidden) => {
                telemetry::denied("topic_rules");
                widgets.push((feed.widget.clone(), vec![forbidden.frame(&feed.widget)]));
                continue;
            }
        };
        let max = state.config.outbox_capacity;
        let Some(read) = state.broker.read(&feed.topic, &feed.widget, hidden.as_deref(), start.read_from(), max) else {
            continue; // the topic has had no message yet: nothing to say
        };
        positions.insert(feed.widget.clone(), read.position);
        if !read.frames.is_empty() {
            widgets.push((feed.widget.clone(), read.frames));
        }
    }
    let outcome = if widgets.is_empty() { "unchanged" } else { "changes" };
    metrics::counter!(telemetry::POLLS, "outcome" => outcome).increment(1);
    let cursor = state.cursors.encode(id, positions.iter().map(|(w, p)| (&**w, p)));
    let mut response = answer_json(&cursor, mode, widgets).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The answer as JSON, spliced from the messages' own JSON: they were encoded once, for every
/// reader, when they were published.
fn answer_json(cursor: &str, mode: LiveMode, widgets: Vec<(Arc<str>, Vec<Frame>)>) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("strings serialise");
    let mut json = format!("{{\"cursor\":{},\"widgets\":[", quote(cursor));
    for (i, (widget, frames)) in widgets.into_iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!("{{\"widgetId\":{},\"messages\":[", quote(&widget)));
        for (j, frame) in frames.into_iter().enumerate() {
            if j > 0 {
                json.push(',');
            }
            json.push_str(frame.text());
        }
        json.push_str("]}");
    }
    json.push_str(&format!("],\"liveMode\":\"{mode}\"}}"));
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{PollAnswer, TopicKind};

    #[test]
    fn the_spliced_answer_is_a_poll_answer() {
        let frames = vec![
            Frame::Gap { widget: "w\"1".into(), text: r#"{"type":"gap","widgetId":"w\"1","reason":"r"}"#.into() },
            Frame::Update {
                widget: "w\"1".into(),
                kind: TopicKind::Series,
                text: r#"{"widgetId":"w\"1","ts":5,"series":[{"ts":5,"value":1.0}],"meta":{"topic":"t","kind":"series","epoch":"ab","offset":3,"resumeToken":"ab.3"}}"#.into(),
                published_at: None,
                position: "ab.3".into(),
            },
        ];
        let json = answer_json("c", LiveMode::Polling, vec![("w\"1".into(), frames)]);
        let answer: PollAnswer = serde_json::from_str(&json).unwrap();
        assert_eq!(answer.cursor, "c");
        assert_eq!(answer.live_mode, Some(LiveMode::Polling));
        assert_eq!(answer.widgets[0].widget_id, "w\"1");
        assert_eq!(answer.widgets[0].messages.len(), 2);
        let empty: PollAnswer = serde_json::from_str(&answer_json("c", LiveMode::Live, vec![])).unwrap();
        assert!(empty.widgets.is_empty());
    }
}
