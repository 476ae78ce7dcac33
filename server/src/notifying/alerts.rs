//! Threshold alerts, the pure part: which values of a published message a threshold weighs, where
//! its state is kept, and what a change of state tells the notification centre. The state itself
//! changes by [`protocol::thresholds::AlertState::observe`], the same rule the pages colour by.

use super::notifiers::Notifier;
use crate::permissions::mask::Hidden;
use protocol::thresholds::{Threshold, ThresholdState, Transition};
use protocol::{Event, Item, Level, TopicKind};
use serde_json::json;

/// The values `items` give `threshold`, in order: its key's values on a `metrics` topic, every
/// point on a `series` topic.
pub fn values(threshold: &Threshold, kind: TopicKind, items: &[Item]) -> Vec<f64> {
    items
        .iter()
        .filter_map(|item| match (kind, item) {
            (TopicKind::Metrics, Item::Metric(metric)) if metric.key == threshold.key => Some(metric.value),
            (TopicKind::Series, Item::Point(point)) if threshold.key.is_empty() => Some(point.value),
            _ => None,
        })
        .filter(|value| value.is_finite())
        .collect()
}

/// Where one threshold's state is kept, across the deployment: per widget and key, and per
/// version of the threshold (changed bounds start from `ok`, rather than carry a state that the
/// new bounds may not give).
pub fn state_key(widget: i64, threshold: &Threshold) -> String {
    let text = serde_json::to_string(threshold).expect("thresholds serialise");
    let digest = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("w{widget}:{}:{digest:016x}", threshold.key)
}

/// One change of a threshold's state, as the node that made it saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub transition: Transition,
    /// The value that completed the change.
    pub value: f64,
    /// When it was seen (ms since the Unix epoch).
    pub at: i64,
}

/// What is told of `alert` of `threshold` on `notifier`'s widget: `Throughput: orders is critical
/// at 20 (below 30) for 2 min`, `… is back to normal at 55`. `None` when its key is among the
/// `hidden` fields of a reader of the centre: the value is not theirs to see.
pub fn event(notifier: &Notifier, threshold: &Threshold, alert: &Alert, hidden: Option<&Hidden>) -> Option<Event> {
    if hidden.is_some_and(|h| h.fields().contains(&threshold.key)) {
        return None;
    }
    let widget = &notifier.widget;
    let subject =
        if threshold.key.is_empty() { widget.title.clone() } else { format!("{}: {}", widget.title, threshold.key) };
    let Transition { from, to, since } = alert.transition;
    let value = number(alert.value);
    let title = match to {
        ThresholdState::Ok => format!("{subject} is back to normal at {value}"),
        state => {
            let bound = threshold.describe(state).unwrap_or_default();
            let held = alert.at.saturating_sub(since) / 1000;
            let lasting = if to > from && held > 0 { format!(" for {}", duration(held)) } else { String::new() };
            format!("{subject} is {} at {value} ({bound}){lasting}", state.as_str())
        }
    };
    let level = match to {
        ThresholdState::Ok => Level::Success,
        ThresholdState::Warning => Level::Warning,
        ThresholdState::Critical => Level::Error,
    };
    let mut event = Event::titled(
        format!("alert/w{}/{}@{since}/{}", widget.id, threshold.key, to.as_str()),
        alert.at,
        "alert",
        level,
        title,
    );
    event.body = Some(format!("{} · {}", widget.title, notifier.dashboard));
    event.data = json!({
        "widget": widget.id,
        "topic": widget.topic,
        "key": threshold.key,
        "state": to.as_str(),
        "from": from.as_str(),
        "value": alert.value,
        "since": since,
    })
    .as_object()
    .cloned();
    Some(event)
}

/// A value as people write it: `20`, `0.25`, never `20.0`.
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::dashboard::{WidgetDef, WidgetKind, WidgetMode};
    use protocol::thresholds::Direction;
    use protocol::{Metric, Point};

    fn orders() -> Threshold {
        Threshold {
            key: "orders".into(),
            direction: Direction::Below,
            warning: Some(50.0),
            critical: Some(30.0),
            for_secs: 120,
            hysteresis: 0.0,
        }
    }

    fn notifier() -> Notifier {
        Notifier {
            dashboard: "Floor".into(),
            widget: WidgetDef {
                id: 7,
                title: "Throughput".into(),
                kind: WidgetKind::KpiTiles,
                topic: "ops/kpi".into(),
                default_mode: WidgetMode::Live,
                notify: None,
                thresholds: vec![orders()],
            },
        }
    }

    fn alert(from: ThresholdState, to: ThresholdState, value: f64) -> Alert {
        Alert { transition: Transition { from, to, since: 1_000 }, value, at: 121_000 }
    }

    #[test]
    fn a_threshold_weighs_its_keys_values_or_every_point() {
        let metric = |key: &str, value| Item::Metric(Metric { key: key.into(), value });
        let items =
            [metric("orders", 40.0), metric("returns", 1.0), metric("orders", f64::NAN), metric("orders", 20.0)];
        assert_eq!(values(&orders(), TopicKind::Metrics, &items), [40.0, 20.0]);
        let series = Threshold { key: String::new(), ..orders() };
        let points = [Item::Point(Point { ts: 1, value: 3.0 }), Item::Point(Point { ts: 2, value: 4.0 })];
        assert_eq!(values(&series, TopicKind::Series, &points), [3.0, 4.0]);
        assert!(values(&orders(), TopicKind::Series, &points).is_empty(), "a keyed threshold weighs no points");
    }

    #[test]
    fn a_changed_threshold_keeps_its_state_elsewhere() {
        let key = state_key(7, &orders());
        assert!(key.starts_with("w7:orders:"));
        assert_eq!(key, state_key(7, &orders()));
        assert_ne!(key, state_key(7, &Threshold { critical: Some(20.0), ..orders() }));
        assert_ne!(key, state_key(8, &orders()));
    }

    #[test]
    fn an_alert_says_what_how_bad_past_which_bound_and_for_how_long() {
        let critical =
            event(&notifier(), &orders(), &alert(ThresholdState::Ok, ThresholdState::Critical, 20.0), None).unwrap();
        assert_eq!(critical.title, "Throughput: orders is critical at 20 (below 30) for 2 min");
        assert_eq!((critical.level, critical.event_type.as_str()), (Level::Error, "alert"));
        assert_eq!(critical.id, "alert/w7/orders@1000/critical");
        assert_eq!(critical.body.as_deref(), Some("Throughput · Floor"));
        let data = critical.data.unwrap();
        assert_eq!(
            (data["state"].as_str(), data["from"].as_str(), data["value"].as_f64()),
            (Some("critical"), Some("ok"), Some(20.0))
        );

        let better =
            event(&notifier(), &orders(), &alert(ThresholdState::Critical, ThresholdState::Warning, 42.5), None);
        assert_eq!(better.unwrap().title, "Throughput: orders is warning at 42.5 (below 50)");
        let resolved = event(&notifier(), &orders(), &alert(ThresholdState::Warning, ThresholdState::Ok, 55.0), None);
        let resolved = resolved.unwrap();
        assert_eq!(
            (resolved.title.as_str(), resolved.level),
            ("Throughput: orders is back to normal at 55", Level::Success)
        );

        let series = Threshold { key: String::new(), for_secs: 0, ..orders() };
        let at_once = Alert { at: 1_000, ..alert(ThresholdState::Ok, ThresholdState::Warning, 0.25) };
        assert_eq!(
            event(&notifier(), &series, &at_once, None).unwrap().title,
            "Throughput is warning at 0.25 (below 50)"
        );
    }

    #[test]
    fn a_key_hidden_from_a_reader_of_the_centre_is_not_told() {
        let hidden = Hidden::of(vec!["orders".into()]);
        let critical = alert(ThresholdState::Ok, ThresholdState::Critical, 20.0);
        assert_eq!(event(&notifier(), &orders(), &critical, hidden.as_ref()), None);
        let other = Hidden::of(vec!["margin".into()]);
        assert!(event(&notifier(), &orders(), &critical, other.as_ref()).is_some());
    }
}
