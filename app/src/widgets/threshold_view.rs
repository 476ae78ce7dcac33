//! How a widget shows a threshold: the words of a state (`⚠ Warning · below 50`), the legend of a
//! chart (`Warning below 50 · Critical below 30`) and the value bands a chart colours its points
//! by. Pure, so the tile, the chart and their tests agree on where each band begins: exactly where
//! [`Threshold::level_of`] changes its answer.
//!
//! The chart's parts are drawn in the browser only; the server renders the words.
#![cfg_attr(not(feature = "hydrate"), allow(dead_code, reason = "charts are drawn in the browser"))]

use protocol::thresholds::{Direction, Threshold, ThresholdState};

/// What a widget says of a value at `state` (`None` when it is fine): an icon and words, so the
/// state reads without telling colours apart.
pub fn state_words(threshold: &Threshold, state: ThresholdState) -> Option<String> {
    let bound = threshold.describe(state)?;
    Some(match state {
        ThresholdState::Ok => return None,
        ThresholdState::Warning => format!("⚠ Warning · {bound}"),
        ThresholdState::Critical => format!("✖ Critical · {bound}"),
    })
}

/// A chart's legend of its bounds, worst last: `Warning below 50 · Critical below 30`.
pub fn legend(threshold: &Threshold) -> String {
    [ThresholdState::Warning, ThresholdState::Critical]
        .into_iter()
        .filter_map(|state| {
            let name = if state == ThresholdState::Warning { "Warning" } else { "Critical" };
            threshold.describe(state).map(|bound| format!("{name} {bound}"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The colour a chart draws a state in: the page's `--warn` and `--bad` (`style/main.css`), light
/// and dark, since ECharts draws on a canvas and cannot read the page's variables; `None` leaves
/// the series its own.
pub fn state_colour(state: ThresholdState, dark: bool) -> Option<&'static str> {
    match (state, dark) {
        (ThresholdState::Ok, _) => None,
        (ThresholdState::Warning, false) => Some("#c98a00"),
        (ThresholdState::Warning, true) => Some("#f2b53a"),
        (ThresholdState::Critical, false) => Some("#d1343e"),
        (ThresholdState::Critical, true) => Some("#ff6b74"),
    }
}

/// One range of values of a single state. A bound is `None` where the range is open; `low` is
/// inclusive when `low_inclusive`, `high` likewise.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub state: ThresholdState,
    pub low: Option<f64>,
    pub low_inclusive: bool,
    pub high: Option<f64>,
    pub high_inclusive: bool,
}

/// The bands that cover every value, one per state the threshold can give, lowest values first.
/// A value exactly at a bound is on the good side of it, as [`Threshold::level_of`] says.
pub fn bands(threshold: &Threshold) -> Vec<Band> {
    // Bounds that change the state, from the good side outward.
    let steps: Vec<(f64, ThresholdState)> =
        [(threshold.warning, ThresholdState::Warning), (threshold.critical, ThresholdState::Critical)]
            .into_iter()
            .filter_map(|(bound, state)| bound.map(|b| (b, state)))
            .collect();
    let mut bands = Vec::new();
    match threshold.direction {
        Direction::Above => {
            // ok ≤ w < warning ≤ c < critical
            let mut low = None;
            let mut state = ThresholdState::Ok;
            for (bound, next) in steps {
                bands.push(Band { state, low, low_inclusive: false, high: Some(bound), high_inclusive: true });
                (low, state) = (Some(bound), next);
            }
            bands.push(Band { state, low, low_inclusive: false, high: None, high_inclusive: false });
        }
        Direction::Below => {
            // critical < c ≤ warning < w ≤ ok
            let mut high = None;
            let mut state = ThresholdState::Ok;
            for (bound, next) in steps {
                bands.push(Band { state, low: Some(bound), low_inclusive: true, high, high_inclusive: false });
                (high, state) = (Some(bound), next);
            }
            bands.push(Band { state, low: None, low_inclusive: false, high, high_inclusive: false });
            bands.reverse();
        }
    }
    // Warning and critical at the same bound leave the warning band empty.
    bands.retain(|band| !matches!((band.low, band.high), (Some(low), Some(high)) if low >= high));
    bands
}

/// The value axis' range for `values` with a threshold: wide enough for the values and every
/// bound (and zero, for bars, which grow from it), rounded outward to the span's order of
/// magnitude, so that ECharts' labels (which include both ends) fall on round numbers. `None` without values or bounds to show.
pub fn axis_range(values: impl Iterator<Item = f64>, threshold: &Threshold, from_zero: bool) -> Option<(f64, f64)> {
    let bounds = [threshold.warning, threshold.critical].into_iter().flatten();
    let zero = from_zero.then_some(0.0);
    let (min, max) = values
        .chain(bounds)
        .chain(zero)
        .filter(|v| v.is_finite())
        .fold(None, |range: Option<(f64, f64)>, v| Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v)))))?;
    let span = if max > min { max - min } else { min.abs().max(1.0) };
    let step = 10f64.powf(span.log10().floor());
    let low = (min / step).floor() * step;
    let high = (max / step).ceil() * step;
    // A value or bound exactly on the edge would sit on the axis line: leave a step beyond it.
    let low = if low == min && !(from_zero && min == 0.0) { low - step } else { low };
    let high = if high == max { high + step } else { high };
    Some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(direction: Direction, warning: Option<f64>, critical: Option<f64>) -> Threshold {
        Threshold { key: String::new(), direction, warning, critical, for_secs: 0, hysteresis: 0.0 }
    }

    /// The state a value falls in by the bands.
    fn banded(bands: &[Band], value: f64) -> ThresholdState {
        let inside = |band: &Band| {
            let above_low = band.low.is_none_or(|low| if band.low_inclusive { value >= low } else { value > low });
            let below_high =
                band.high.is_none_or(|high| if band.high_inclusive { value <= high } else { value < high });
            above_low && below_high
        };
        let found: Vec<_> = bands.iter().filter(|b| inside(b)).collect();
        assert_eq!(found.len(), 1, "{value} is in exactly one band of {bands:?}");
        found[0].state
    }

    #[test]
    fn the_bands_agree_with_the_level_of_every_value_bounds_included() {
        let cases = [
            threshold(Direction::Below, Some(50.0), Some(30.0)),
            threshold(Direction::Above, Some(200.0), Some(500.0)),
            threshold(Direction::Below, None, Some(30.0)),
            threshold(Direction::Above, Some(200.0), None),
            threshold(Direction::Above, Some(100.0), Some(100.0)),
            threshold(Direction::Below, Some(-5.0), Some(-5.0)),
        ];
        for t in &cases {
            let bands = bands(t);
            for value in [-1e9, -5.0, -4.9, 0.0, 29.9, 30.0, 30.1, 50.0, 50.1, 100.0, 100.1, 200.0, 500.0, 500.1, 1e9] {
                assert_eq!(banded(&bands, value), t.level_of(value), "{value} under {t:?}");
            }
        }
    }

    #[test]
    fn a_state_and_a_legend_are_said_in_words() {
        let t = threshold(Direction::Below, Some(50.0), Some(30.0));
        assert_eq!(state_words(&t, ThresholdState::Ok), None);
        assert_eq!(state_words(&t, ThresholdState::Warning).unwrap(), "⚠ Warning · below 50");
        assert_eq!(state_words(&t, ThresholdState::Critical).unwrap(), "✖ Critical · below 30");
        assert_eq!(legend(&t), "Warning below 50 · Critical below 30");
        assert_eq!(legend(&threshold(Direction::Above, None, Some(0.5))), "Critical above 0.5");
    }

    #[test]
    fn the_value_axis_holds_every_value_and_bound_in_round_steps() {
        let near = |got: Option<(f64, f64)>, want: (f64, f64)| {
            let (low, high) = got.expect("a range");
            assert!((low - want.0).abs() < 1e-9 && (high - want.1).abs() < 1e-9, "{low}..{high}, not {want:?}");
        };
        let below = threshold(Direction::Below, Some(50.0), Some(30.0));
        // Values well above the bounds: the axis reaches down to show them, a step past the lowest.
        near(axis_range([61.0, 74.5].into_iter(), &below, false), (20.0, 80.0));
        // Bars grow from zero.
        near(axis_range([61.0, 74.5].into_iter(), &below, true), (0.0, 80.0));
        let above = threshold(Direction::Above, None, Some(0.5));
        let (low, high) = axis_range([0.12, 0.2].into_iter(), &above, false).unwrap();
        assert!((low - 0.1).abs() < 1e-9 && (high - 0.6).abs() < 1e-9, "{low}..{high}");
        // No values yet: the bounds alone.
        near(axis_range(std::iter::empty(), &below, false), (20.0, 60.0));
        // A value that is no number is left out.
        near(axis_range([f64::NAN, 40.0].into_iter(), &below, false), (20.0, 60.0));
    }

    #[test]
    fn a_chart_colours_its_states_as_the_page_does() {
        let css = include_str!("../../../style/main.css");
        // `--warn: light-dark(#c98a00, #f2b53a);`: the light value, then the dark one.
        let variable = |name: &str, dark: bool| {
            let at = css.find(&format!("--{name}: light-dark(")).unwrap_or_else(|| panic!("--{name} in main.css"));
            let values = css[at..].split_once('(').unwrap().1.split_once(')').unwrap().0;
            let (light, dark_value) = values.split_once(',').unwrap();
            (if dark { dark_value } else { light }).trim().to_owned()
        };
        for is_dark in [false, true] {
            assert_eq!(state_colour(ThresholdState::Warning, is_dark).unwrap(), variable("warn", is_dark));
            assert_eq!(state_colour(ThresholdState::Critical, is_dark).unwrap(), variable("bad", is_dark));
        }
        assert_eq!(state_colour(ThresholdState::Ok, false), None);
    }
}
