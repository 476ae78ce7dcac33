//! `GET /api/stream/dashboard/{id}`: every feed of one stored dashboard as Server-Sent Events, for
//! browsers whose network breaks WebSockets.
//!
//! The stream is a connection like a WebSocket: admitted by the same checks (and counted in the
//! same per-user limit), fed by the broker through the same bounded [`Outbox`], so the queueing, gap
//! and memory rules are the WebSocket's. One task per stream drains the outbox and writes each
//! batch, framed as events, as one chunk ([`sse_stream`](super::sse_stream)). Every data event's
//! `id:` is a signed cursor of the positions of every feed ([`cursor`](crate::connections::cursor)), so
//! `Last-Event-ID` resumes exactly; a dashboard edited while it streams is followed as it changes.

use super::{
    admission,
    dashboard_feeds::{self, Feed, Starts},
    endings::Ending,
    live_connection::{FollowError, LiveConnection},
    sse_format::{self, MetricChanges},
    sse_stream::{EventStream, Lifetime, Wake},
};
use crate::extract::{ApiPath, ApiQuery};
use crate::outbox::{Batch, Frame};
use crate::{
    AppState,
    broker::{ReadFrom, position::Position},
    client_addr::ClientAddr,
    http_error::ApiError,
    listener::Hangup,
    telemetry,
};
use axum::{
    extract::{Extension, State},
    http::HeaderMap,
    response::Response,
};
use protocol::ErrorBody;
use protocol::close::{Disconnect, NORMAL};
use protocol::dashboard::DASHBOARD_EDITS_FEED;
use protocol::sse::{self, event};
use protocol::{ControlMessage, Item, ServerMessage, TopicKind, Update};
use serde::Deserialize;
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// `Last-Event-ID` for clients that open a new `EventSource` (which cannot set headers).
    last_event_id: Option<String>,
    /// Per-widget resume tokens (`w1:epoch.offset,…`), to carry positions over from the WebSocket.
    positions: Option<String>,
}

#[utoipa::path(
    get, path = "/api/stream/dashboard/{id}", tag = "live", params(("id" = i64, Path, description = "The dashboard"), StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The last event id this client saw: the stream resumes after it")),
    description = "Every feed of a dashboard as Server-Sent Events (`snapshot`, `update`, `gap`, `heartbeat`, `close`, …; see docs/protocol.md). The stream stays open until the client leaves, its session ends or the server stops.",
    responses(
        (status = 200, description = "The event stream", body = String, content_type = "text/event-stream"),
        (status = 403, description = "A foreign `Origin`, or the tenant's live mode is `off` or `polling`", body = ErrorBody),
        (status = 404, description = "No such dashboard for this tenant", body = ErrorBody),
        (status = 429, description = "Too many connections for this user or attempts from this address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    )
)]
pub async fn dashboard(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<StreamParams>,
    hangup: Option<Extension<Hangup>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let headers = &headers;
    let session = admission::admit_stream(&state, peer, headers).await?;
    let feeds = dashboard_feeds::load(&state, &session, id).await?;
    let starts = starts(&state, id, headers, &params)?;
    let detail = format!("sse for dashboard {id} from {peer}");
    let live = LiveConnection::open(&state, session, headers, "sse", detail)
        .await
        .map_err(|(session, r)| admission::refuse_stream(&state, Some(&session), peer, &r))?;
    if starts.is_last_event_id() {
        metrics::counter!(telemetry::SSE_RECONNECTIONS, "stream" => "dashboard").increment(1);
    }

    let (events, response) = EventStream::open(&state.config, "dashboard", &live, hangup.map(|Extension(h)| h));
    let stream = DashboardStream {
        dashboard: id,
        state,
        live,
        events,
        positions: BTreeMap::new(),
        metric_changes: MetricChanges::default(),
    };
    tokio::spawn(stream.run(feeds, starts));
    Ok(response)
}

/// Where the reader starts: `Last-Event-ID` (header, else the query's `lastEventId`), else the
/// query's `positions`, else nowhere.
fn starts(state: &AppState, id: i64, headers: &HeaderMap, params: &StreamParams) -> Result<Starts, ApiError> {
    let header = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    if let Some(cursor) = header.or(params.last_event_id.as_deref()).filter(|c| !c.is_empty()) {
        return Ok(Starts::from_cursor(&state.cursors, id, cursor));
    }
    match &params.positions {
        Some(list) => Starts::from_tokens(list).map_err(ApiError::bad_request),
        None => Ok(Starts::Fresh),
    }
}

struct DashboardStream {
    dashboard: i64,
    state: AppState,
    /// Its seat, its feeds (widget id → topic) and what ends it.
    live: LiveConnection,
    events: EventStream,
    /// widget id → the position of the last snapshot or update sent
    positions: BTreeMap<Arc<str>, Position>,
    metric_changes: MetricChanges,
}

impl DashboardStream {
    async fn run(mut self, feeds: Vec<Feed>, starts: Starts) {
        tracing::debug!(connection = self.live.id, dashboard = self.dashboard, "streaming a dashboard");
        for feed in feeds {
            let start = starts.of(&feed, &self.state.broker);
            self.follow(feed, start.read_from());
        }
        let ending = self.serve().await;
        self.events.end(ending).await;
        self.live.close().await;
    }

    async fn serve(&mut self) -> Ending {
        let mut lifetime = Lifetime::new(&self.state.config, &self.live);
        loop {
            let next = match lifetime.next(&self.events, &mut self.live).await {
                Wake::Frames => {
                    let batch = self.live.take();
                    self.write(batch).await
                }
                Wake::HeartbeatSent => Ok(()),
                Wake::Ended(ending) => Err(ending),
            };
            if let Err(ending) = next {
                return ending;
            }
        }
    }

    /// Subscribes one feed, starting where the reader stood.
    fn follow(&mut self, feed: Feed, from: ReadFrom) {
        let Feed { widget, topic } = feed;
        // A topic the rules refuse becomes a `widget_error` event (see `event_of`); else only a
        // tenant-wide limit refuses one of the dashboard's own feeds. The stream goes on with the
        // others; the refusal is counted and audited.
        if let Err(FollowError::Broker(e)) = self.live.follow(widget, topic.clone(), from, ()) {
            tracing::warn!(connection = self.live.id, %topic, error = %e, "feed not followed");
        }
    }

    /// Follows the dashboard's feeds as they are now: new widgets start with a snapshot, removed
    /// ones stop.
    async fn reload(&mut self) -> Result<(), Ending> {
        let feeds = match dashboard_feeds::load(&self.state, &self.live.session, self.dashboard).await {
            Ok(feeds) => feeds,
            Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
                return Err(Ending::Close(Disconnect::new(NORMAL, "the dashboard was removed")));
            }
            Err(_) => return Ok(()), // logged; the stream goes on with what it has
        };
        let wanted: HashMap<Arc<str>, Feed> = feeds.into_iter().map(|f| (f.widget.clone(), f)).collect();
        let gone: Vec<Arc<str>> = self
            .live
            .subscriptions()
            .filter(|(w, followed)| wanted.get(*w).map(|f| &f.topic) != Some(&followed.topic))
            .map(|(w, _)| w.clone())
            .collect();
        for widget in gone {
            self.live.unfollow(&widget);
            self.positions.remove(&widget);
            self.metric_changes.forget(&widget);
        }
        for (widget, feed) in wanted {
            if self.live.followed(&widget).is_none() {
                self.follow(feed, ReadFrom::Start);
            }
        }
        Ok(())
    }

    /// Frames a batch as events, sends it as one chunk, then resyncs feeds that lagged, and follows
    /// the dashboard's new set of widgets when the batch announced an edit of it.
    async fn write(&mut self, batch: Batch) -> Result<(), Ending> {
        let mut text = String::new();
        let mut sent = 0u64;
        let mut events = 0;
        let mut edited = false;
        for frame in batch.frames {
            edited |= self.announces_edit(&frame);
            let event = frame.is_live_event();
            if let Some((name, data)) = self.event_of(frame) {
                events += usize::from(event);
                let id = self.state.cursors.encode(self.dashboard, self.positions.iter().map(|(w, p)| (&**w, p)));
                sse_format::push_event(&mut text, name, Some(&id), &data);
                sent += 1;
            }
        }
        if !text.is_empty() {
            self.events.send(text).await?;
            self.events.count_sent(sent);
            telemetry::event_deliveries("delivered", events);
        }
        self.live.resync(batch.lagging);
        if edited { self.reload().await } else { Ok(()) }
    }

    /// Whether `frame`, on the page's feed of dashboard edits (which every node's edits reach),
    /// says this dashboard changed, or that edits may have been missed (a gap).
    fn announces_edit(&self, frame: &Frame) -> bool {
        match frame {
            Frame::Gap { widget, .. } => &**widget == DASHBOARD_EDITS_FEED,
            Frame::Update { widget, text, .. } if &**widget == DASHBOARD_EDITS_FEED => {
                let Ok(ServerMessage::Update(update)) = serde_json::from_str(text) else {
                    return false;
                };
                let id = self.dashboard.to_string();
                update.series.iter().any(|item| matches!(item, Item::Change(change) if change.id == id))
            }
            _ => false,
        }
    }

    /// The event name and data of a frame, moving the widget's position; `None` for a frame of a
    /// feed this stream no longer follows.
    fn event_of(&mut self, frame: Frame) -> Option<(&'static str, String)> {
        match frame {
            Frame::Gap { widget, text } => self.live.followed(&widget).map(|_| (event::GAP, text)),
            Frame::Snapshot { widget, kind, text, position } => {
                self.live.followed(&widget)?;
                self.moved(&widget, &position);
                if kind == TopicKind::Metrics
                    && let Ok(ServerMessage::Control(ControlMessage::Snapshot { series, .. })) =
                        serde_json::from_str(&text)
                {
                    self.metric_changes.reset(&widget, &series);
                }
                Some((event::SNAPSHOT, text))
            }
            Frame::Update { widget, kind, text, position, .. } => {
                self.live.followed(&widget)?;
                self.moved(&widget, &position);
                let text = text.as_str().to_owned();
                let text = if kind == TopicKind::Metrics { self.changed_metrics(&widget, text) } else { text };
                Some((sse::update_event(kind), text))
            }
            Frame::Refused { widget, text } => {
                // The feed ended: the cursor no longer carries its position.
                self.positions.remove(&widget);
                self.metric_changes.forget(&widget);
                Some((event::WIDGET_ERROR, text))
            }
            Frame::Whole(_) => None, // a stream has no replies of its own
        }
    }

    /// A metrics update with only the keys whose value changed for this widget.
    fn changed_metrics(&mut self, widget: &Arc<str>, text: String) -> String {
        match serde_json::from_str::<ServerMessage>(&text) {
            Ok(ServerMessage::Update(Update { widget_id, ts, series, meta })) => {
                let series = self.metric_changes.changed(widget, series);
                ServerMessage::Update(Update { widget_id, ts, series, meta }).to_json()
            }
            _ => text,
        }
    }

    fn moved(&mut self, widget: &Arc<str>, token: &str) {
        if let Some(position) = Position::parse(token) {
            self.positions.insert(widget.clone(), position);
        }
    }
}
