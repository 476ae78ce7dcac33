//! KPI tiles for a `metrics` topic: one tile per key; a value that changes flashes briefly.

use super::{
    flash::flashing,
    frame::{Framed, WidgetFrame},
};
use crate::live::{
    kpi_values::{KpiValues, format_value, label},
    use_topic,
};
use leptos::prelude::*;
use protocol::dashboard::{WidgetDef, WidgetMode};

#[component]
pub fn KpiTiles(def: WidgetDef, mode: WidgetMode) -> AnyView {
    let feed = use_topic::<KpiValues>(&def.dom_id(), &def.topic, mode);
    let flash = flashing(move || feed.data.with(|v| v.changed.clone()));
    let tiles = move || {
        feed.data.with(|v| {
            v.iter()
                .map(|(key, value)| {
                    let lit = flash.with(|f| f.contains(key));
                    view! {
                        <div class="kpi" class:kpi-flash=lit data-key=key.clone()>
                            <span class="kpi-label">{label(key)}</span>
                            <span class="kpi-value">{format_value(*value)}</span>
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
