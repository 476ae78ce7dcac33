//! Thresholds: when a KPI or a series is good, a warning or critical, and when that turns into an
//! alert. Shared by the browser (a tile's or a chart's colour, from the value alone) and the server
//! (alerts, which also weigh how long a state held and a margin against flapping), so the two never
//! disagree on what a value means.

use serde::{Deserialize, Serialize};

/// Which side of a bound is bad: `above` (latency, errors) or `below` (orders per second, stock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Bad when the value rises past the bound (latency, errors).
    Above,
    /// Bad when it falls past it (orders per second, stock).
    Below,
}

/// How bad a value is. Ordered: `Ok < Warning < Critical`. (Apart from a notification's
/// [`Level`](crate::Level), which is how it is shown.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ThresholdState {
    #[default]
    Ok,
    Warning,
    Critical,
}

impl ThresholdState {
    pub const ALL: [ThresholdState; 3] = [ThresholdState::Ok, ThresholdState::Warning, ThresholdState::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdState::Ok => "ok",
            ThresholdState::Warning => "warning",
            ThresholdState::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// One threshold: the bounds of one metric key (a KPI tile) or of a series (`key` empty). At least
/// one of `warning` and `critical` is set; with both, `critical` is the worse bound (at or above
/// `warning` for `above`, at or below it for `below`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({
        "key": "orders_per_sec",
        "direction": "below",
        "warning": 50,
        "critical": 30,
        "forSecs": 60,
        "hysteresis": 2
    }))
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Threshold {
    /// The metric key; empty for a series' values.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = ""))]
    pub key: String,
    pub direction: Direction,
    /// A value past it is a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
    /// A value past it is critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<f64>,
    /// How long a worse state must hold before it is an alert, in seconds (0: at once).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = 0))]
    pub for_secs: u32,
    /// How far back past a bound a value must come to leave its state (against flapping); 0 or more.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = 0.0))]
    pub hysteresis: f64,
}

/// Why a threshold cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThresholdError {
    NoBound,
    NotFinite,
    Order { direction: Direction },
    NegativeHysteresis,
}

impl std::fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThresholdError::NoBound => f.write_str("set a warning or a critical bound"),
            ThresholdError::NotFinite => f.write_str("bounds and hysteresis are finite numbers"),
            ThresholdError::Order { direction: Direction::Above } => {
                f.write_str("bad when above: the critical bound is above the warning bound")
            }
            ThresholdError::Order { direction: Direction::Below } => {
                f.write_str("bad when below: the critical bound is below the warning bound")
            }
            ThresholdError::NegativeHysteresis => f.write_str("the hysteresis is 0 or more"),
        }
    }
}

impl std::error::Error for ThresholdError {}

impl Threshold {
    pub fn validate(&self) -> Result<(), ThresholdError> {
        if self.warning.is_none() && self.critical.is_none() {
            return Err(ThresholdError::NoBound);
        }
        let numbers = [self.warning, self.critical, Some(self.hysteresis)];
        if numbers.into_iter().flatten().any(|n| !n.is_finite()) {
            return Err(ThresholdError::NotFinite);
        }
        if self.hysteresis < 0.0 {
            return Err(ThresholdError::NegativeHysteresis);
        }
        if let (Some(warning), Some(critical)) = (self.warning, self.critical) {
            let ordered = match self.direction {
                Direction::Above => critical >= warning,
                Direction::Below => critical <= warning,
            };
            if !ordered {
                return Err(ThresholdError::Order { direction: self.direction });
            }
        }
        Ok(())
    }

    /// Whether `value` is past `bound` on the bad side.
    fn past(&self, value: f64, bound: f64) -> bool {
        match self.direction {
            Direction::Above => value > bound,
            Direction::Below => value < bound,
        }
    }

    /// The bound a state is past: `below 30`, `above 500`; `None` for `Ok` or a bound not set.
    pub fn describe(&self, state: ThresholdState) -> Option<String> {
        let bound = match state {
            ThresholdState::Ok => None,
            ThresholdState::Warning => self.warning,
            ThresholdState::Critical => self.critical,
        }?;
        let side = match self.direction {
            Direction::Above => "above",
            Direction::Below => "below",
        };
        Some(format!("{side} {bound}"))
    }

    /// The level of `value` alone: what a tile's colour says.
    pub fn level_of(&self, value: f64) -> ThresholdState {
        if self.critical.is_some_and(|c| self.past(value, c)) {
            ThresholdState::Critical
        } else if self.warning.is_some_and(|w| self.past(value, w)) {
            ThresholdState::Warning
        } else {
            ThresholdState::Ok
        }
    }

    /// The level of `value` for something now at `current`: a state is left only once the value
    /// is back past its bound by the hysteresis, so a value hovering at a bound does not flap.
    pub fn level_from(&self, current: ThresholdState, value: f64) -> ThresholdState {
        let raw = self.level_of(value);
        if raw >= current || self.hysteresis == 0.0 {
            return raw;
        }
        // Moving to a better level: each level between must be cleared with the margin.
        let margin = match self.direction {
            Direction::Above => -self.hysteresis,
            Direction::Below => self.hysteresis,
        };
        let shifted = Threshold { hysteresis: 0.0, ..self.clone() }.level_of(value - margin);
        shifted.clamp(raw, current)
    }
}

/// Alerts kept per widget (`GET /api/dashboards/{id}/widgets/{widget}/alerts`); older ones go.
pub const ALERTS_KEPT: usize = 200;

/// One alert of a widget's history: a threshold's state changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    /// The threshold's key (empty for a chart's series).
    pub key: String,
    /// The state it left.
    pub from: ThresholdState,
    /// The state it entered.
    pub to: ThresholdState,
    /// The value that completed the change.
    pub value: f64,
    /// When the new state began (ms since the Unix epoch).
    pub since: i64,
    /// When it was told (ms).
    pub at: i64,
}

/// A change of an alert's state, as the server tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: ThresholdState,
    pub to: ThresholdState,
    /// When the new state began (ms), which may be before the value that confirmed it.
    pub since: i64,
}

/// One threshold's alert state, fed every value as it is published. A worse level becomes an
/// alert once it has held for `for_secs` (counted from the first value at it); a better level is
/// taken at once (with the hysteresis). One transition per change: nothing repeats while the state
/// stays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertState {
    /// The state told last.
    pub level: ThresholdState,
    /// A worse level seen, and since when, not yet held long enough.
    pub pending: Option<(ThresholdState, i64)>,
}

impl AlertState {
    /// Takes the value published at `ts` (ms); the transition it completes, if any.
    pub fn observe(&mut self, threshold: &Threshold, ts: i64, value: f64) -> Option<Transition> {
        let seen = threshold.level_from(self.level, value);
        if seen <= self.level {
            self.pending = None;
            if seen == self.level {
                return None;
            }
            let from = std::mem::replace(&mut self.level, seen);
            return Some(Transition { from, to: seen, since: ts });
        }
        // Worse: from when did it start? A pending worse level keeps its start while it lasts,
        // even if the value moves between warning and critical meanwhile.
        let since = match self.pending {
            Some((_, since)) => since,
            None => ts,
        };
        self.pending = Some((seen, since));
        let held_ms = ts.saturating_sub(since);
        if held_ms < i64::from(threshold.for_secs) * 1000 {
            return None;
        }
        self.pending = None;
        let from = std::mem::replace(&mut self.level, seen);
        Some(Transition { from, to: seen, since })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn below(warning: f64, critical: f64, for_secs: u32, hysteresis: f64) -> Threshold {
        Threshold {
            key: "orders_per_sec".into(),
            direction: Direction::Below,
            warning: Some(warning),
            critical: Some(critical),
            for_secs,
            hysteresis,
        }
    }

    #[test]
    fn a_value_is_judged_by_its_side_of_each_bound() {
        let t = below(50.0, 30.0, 0, 0.0);
        assert_eq!(
            [t.level_of(60.0), t.level_of(50.0), t.level_of(40.0), t.level_of(29.9)],
            [ThresholdState::Ok, ThresholdState::Ok, ThresholdState::Warning, ThresholdState::Critical]
        );
        let latency = Threshold { direction: Direction::Above, warning: None, critical: Some(500.0), ..t.clone() };
        assert_eq!(latency.level_of(499.0), ThresholdState::Ok);
        assert_eq!(latency.level_of(501.0), ThresholdState::Critical);
    }

    #[test]
    fn a_state_names_its_bound() {
        let t = below(50.0, 30.5, 0, 0.0);
        assert_eq!(t.describe(ThresholdState::Critical).as_deref(), Some("below 30.5"));
        assert_eq!(t.describe(ThresholdState::Warning).as_deref(), Some("below 50"));
        assert_eq!(t.describe(ThresholdState::Ok), None);
        let only_critical = Threshold { warning: None, direction: Direction::Above, ..t };
        assert_eq!(only_critical.describe(ThresholdState::Warning), None);
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let t = below(30.0, 50.0, 0, 0.0);
        assert_eq!(t.validate(), Err(ThresholdError::Order { direction: Direction::Below }));
        assert_eq!(
            t.validate().unwrap_err().to_string(),
            "bad when below: the critical bound is below the warning bound"
        );
        let none = Threshold { warning: None, critical: None, ..below(1.0, 0.0, 0, 0.0) };
        assert_eq!(none.validate(), Err(ThresholdError::NoBound));
        assert_eq!(below(50.0, 30.0, 0, -1.0).validate(), Err(ThresholdError::NegativeHysteresis));
        assert_eq!(below(f64::NAN, 30.0, 0, 0.0).validate(), Err(ThresholdError::NotFinite));
        assert_eq!(below(50.0, 30.0, 120, 2.0).validate(), Ok(()));
    }

    #[test]
    fn an_alert_waits_for_its_duration_and_is_told_once_per_episode() {
        let t = below(50.0, 30.0, 120, 0.0);
        let mut state = AlertState::default();
        assert_eq!(state.observe(&t, 0, 60.0), None);
        assert_eq!(state.observe(&t, 10_000, 20.0), None, "critical, but not for 2 min yet");
        assert_eq!(state.observe(&t, 60_000, 25.0), None);
        let raised = state.observe(&t, 130_000, 22.0).expect("held for 2 min");
        assert_eq!(raised, Transition { from: ThresholdState::Ok, to: ThresholdState::Critical, since: 10_000 });
        assert_eq!(state.observe(&t, 140_000, 10.0), None, "no repeat while it stays");
        let resolved = state.observe(&t, 150_000, 70.0).expect("resolved at once");
        assert_eq!(resolved, Transition { from: ThresholdState::Critical, to: ThresholdState::Ok, since: 150_000 });
    }

    #[test]
    fn a_dip_shorter_than_the_duration_raises_nothing() {
        let t = below(50.0, 30.0, 60, 0.0);
        let mut state = AlertState::default();
        assert_eq!(state.observe(&t, 0, 20.0), None);
        assert_eq!(state.observe(&t, 30_000, 70.0), None, "back before a minute: forgotten");
        assert_eq!(state.observe(&t, 40_000, 20.0), None, "a new dip counts from its own start");
        assert_eq!(state.observe(&t, 90_000, 20.0), None);
        assert_eq!(state.observe(&t, 100_000, 20.0).map(|t| t.since), Some(40_000));
    }

    #[test]
    fn hysteresis_keeps_a_value_at_a_bound_from_flapping() {
        let t = below(50.0, 30.0, 0, 5.0);
        let mut state = AlertState::default();
        let mut told = Vec::new();
        for (i, v) in [29.0, 31.0, 29.5, 33.0, 34.9, 36.0, 54.0, 56.0].into_iter().enumerate() {
            if let Some(change) = state.observe(&t, i as i64 * 1000, v) {
                told.push((change.from, change.to));
            }
        }
        assert_eq!(
            told,
            [
                (ThresholdState::Ok, ThresholdState::Critical),
                (ThresholdState::Critical, ThresholdState::Warning),
                (ThresholdState::Warning, ThresholdState::Ok)
            ],
            "critical until 35 (30 + 5), warning until 55 (50 + 5)"
        );
    }

    #[test]
    fn the_wire_shape_is_camel_case() {
        let t: Threshold =
            serde_json::from_str(r#"{"key":"p95","direction":"above","critical":500,"forSecs":60}"#).unwrap();
        assert_eq!((t.critical, t.warning, t.for_secs, t.hysteresis), (Some(500.0), None, 60, 0.0));
        assert!(serde_json::from_str::<Threshold>(r#"{"direction":"above","limit":1}"#).is_err());
    }
}
