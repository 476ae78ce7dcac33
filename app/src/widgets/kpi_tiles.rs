//! KPI tiles for a `metrics` topic: one tile per key; a value that changes flashes briefly. A key
//! with a threshold says its state past a bound in words and an icon as well as by colour
//! (`⚠ Warning · below 50`), so it reads without telling colours apart.

use super::{
    flash::flashing,
    frame::{Framed, WidgetFrame},
    threshold_view::state_words,
};
use crate::live::{
    kpi_values::{KpiValues, format_value, label},
    use_topic,
};
use leptos::prelude::*;
use protocol::dashboard::{WidgetDef, WidgetMode};
use protocol::thresholds::{Threshold, ThresholdState};

/// A tile's state and what it says of it (`None` when it has no threshold or is fine).
pub fn tile_state(thresholds: &[Threshold], key: &str, value: f64) -> (ThresholdState, Option<String>) {
    let Some(threshold) = thresholds.iter().find(|t| t.key == key) else { return (ThresholdState::Ok, None) };
    let state = threshold.level_of(value);
    (state, state_words(threshold, state))
}

#[component]
pub fn KpiTiles(
    def: WidgetDef,
    mode: WidgetMode,
    /// The widget's thresholds as saved now (they may change while it is shown).
    thresholds: Memo<Vec<Threshold>>,
) -> AnyView {
    let feed = use_topic::<KpiValues>(&def.dom_id(), &def.topic, mode);
    let flash = flashing(move || feed.data.with(|v| v.changed.clone()));
    let tiles = move || {
        feed.data.with(|v| {
            v.iter()
                .map(|(key, value)| {
                    let lit = flash.with(|f| f.contains(key));
                    let (state, said) = thresholds.with(|t| tile_state(t, key, *value));
                    view! {
                        <div class=format!("kpi kpi-{}", state.as_str()) class:kpi-flash=lit data-key=key.clone() data-state=state.as_str()>
                            <span class="kpi-label">{label(key)}</span>
                            <span class="kpi-value">{format_value(*value)}</span>
                            {said.map(|said| view! { <span class="kpi-state">{said}</span> })}
                        </div>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <WidgetFrame framed=Framed::new(&def, feed)>
            <div class="kpi-grid">{tiles}</div>
        </WidgetFrame>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::thresholds::Direction;

    #[test]
    fn a_tile_says_its_state_in_words_not_colour_alone() {
        let orders = Threshold {
            key: "orders".into(),
            direction: Direction::Below,
            warning: Some(50.0),
            critical: Some(30.0),
            for_secs: 0,
            hysteresis: 0.0,
        };
        let thresholds = [orders];
        assert_eq!(tile_state(&thresholds, "orders", 60.0), (ThresholdState::Ok, None));
        assert_eq!(
            tile_state(&thresholds, "orders", 40.0),
            (ThresholdState::Warning, Some("⚠ Warning · below 50".into()))
        );
        assert_eq!(
            tile_state(&thresholds, "orders", 20.0),
            (ThresholdState::Critical, Some("✖ Critical · below 30".into()))
        );
        assert_eq!(tile_state(&thresholds, "returns", 0.0), (ThresholdState::Ok, None), "no threshold, no state");
    }
}
