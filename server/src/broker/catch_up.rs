//! The frames a subscriber gets: its snapshot, the updates it missed (a catch-up from its
//! position, or a gap and a fresh snapshot when the history cannot bridge), and each new update.

use super::*;
use crate::outbox::update_text;
use axum::extract::ws::Utf8Bytes;

/// The frames that bring a reader at `from` up to date, without the `hidden` fields (those a
/// message of this topic's kind can carry), under the topic's lock.
pub(super) fn catch_up(
    topic: &Topic,
    inner: &mut TopicInner,
    widget: &Arc<str>,
    prefix: &Arc<str>,
    hidden: Option<&Hidden>,
    from: ReadFrom,
    max_updates: usize,
) -> Vec<Frame> {
    let hidden = hidden.filter(|hidden| hidden.touches(topic.kind));
    let catchup = match from {
        ReadFrom::Start => return vec![snapshot_frame(topic, inner, widget, hidden)],
        ReadFrom::Token(token) => match Position::parse(token) {
            Some(position) => inner.log.catch_up(&position, now_ms()),
            None => Catchup::Gap,
        },
        ReadFrom::Time(since) => inner.log.catch_up_since(since, now_ms()),
        ReadFrom::Lost => Catchup::Gap,
    };
    match catchup {
        Catchup::Replay(entries) if entries.len() <= max_updates => {
            metrics::counter!(telemetry::RESUMES, "outcome" => "replayed").increment(1);
            let text = |entry: &Entry| match hidden {
                Some(hidden) => update_text(prefix, &encode::masked_body(&entry.body, hidden)),
                None => update_text(prefix, &entry.body),
            };
            entries.iter().map(|entry| update_frame(widget, topic.kind, entry, text(entry).into(), None)).collect()
        }
        Catchup::Replay(_) => {
            // Like a subscriber whose queue overflowed: the kinds that coalesce lose nothing.
            let gap = matches!(topic.kind, TopicKind::Series | TopicKind::Events).then(|| {
                metrics::counter!(telemetry::GAPS, "reason" => "slow_subscriber").increment(1);
                gap_frame(widget, "more updates were missed than are replayed at once")
            });
            gap.into_iter().chain([snapshot_frame(topic, inner, widget, hidden)]).collect()
        }
        Catchup::Gap => {
            metrics::counter!(telemetry::RESUMES, "outcome" => "gap").increment(1);
            metrics::counter!(telemetry::GAPS, "reason" => "history").increment(1);
            let gap = gap_frame(widget, "resume position no longer in history");
            vec![gap, snapshot_frame(topic, inner, widget, hidden)]
        }
    }
}

/// One subscriber's frame of a logged message, whose `text` is its prefix and the entry's body (or
/// the entry's with fields hidden); `published_at` only for live (not replayed) ones.
pub(super) fn update_frame(
    widget: &Arc<str>,
    kind: TopicKind,
    entry: &Entry,
    text: Utf8Bytes,
    published_at: Option<Instant>,
) -> Frame {
    Frame::Update { widget: widget.clone(), kind, text, published_at, position: entry.position.clone() }
}

/// One subscriber's snapshot: its prefix and the topic's snapshot body, encoded at most once per
/// position (and again, filtered, for a subscriber with `hidden` fields).
pub(super) fn snapshot_frame(
    topic: &Topic,
    inner: &mut TopicInner,
    widget: &Arc<str>,
    hidden: Option<&Hidden>,
) -> Frame {
    let hidden = hidden.filter(|hidden| hidden.touches(topic.kind));
    let position = inner.log.position();
    let body = match &inner.snapshot {
        Some((offset, body)) if *offset == position.offset => body.clone(),
        _ => {
            let items = inner.state.snapshot();
            let body: Arc<str> =
                encode::update_body(topic.key.name.as_str(), topic.kind, &position, now_ms(), &items).into();
            inner.snapshot = Some((position.offset, body.clone()));
            body
        }
    };
    let text = match hidden {
        Some(hidden) => encode::snapshot_prefix(widget) + &encode::masked_body(&body, hidden),
        None => encode::snapshot_prefix(widget) + &body,
    };
    Frame::Snapshot { widget: widget.clone(), kind: topic.kind, text, position: position.token().into() }
}

pub(super) fn gap_frame(widget: &Arc<str>, reason: &str) -> Frame {
    let message = protocol::ServerMessage::Control(protocol::ControlMessage::Gap {
        widget_id: widget.to_string(),
        reason: reason.to_owned(),
    });
    Frame::Gap { widget: widget.clone(), text: message.to_json() }
}
