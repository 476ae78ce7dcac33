//! KPI tiles for a `metrics` topic: one tile per key; a value that changes flashes briefly.

use crate::live::kpi_values::{format_value, label};
use leptos::prelude::*;

#[component]
pub fn KpiTiles(
    /// Identifies the widget on the connection (unique per page).
    widget_id: &'static str,
    /// Topic name, relative to the tenant.
    topic: &'static str,
    title: &'static str,
) -> AnyView {
    // (key, value) in key order, and the keys flashing right now.
    let tiles = RwSignal::new(Vec::<(String, f64)>::new());
    let flashing = RwSignal::new(Vec::<String>::new());
    let live_updates = RwSignal::new(0u64);

    #[cfg(feature = "hydrate")]
    browser::attach(widget_id, topic, tiles, flashing, live_updates);
    #[cfg(not(feature = "hydrate"))]
    let _ = topic;

    view! {
        <section class="widget widget-kpis" data-widget-id=widget_id data-updates=move || live_updates.get()>
            <header class="widget-header">
                <h2>{title}</h2>
                <span class="mode-badge">"Live"</span>
            </header>
            <div class="kpi-grid">
                {move || {
                    tiles
                        .get()
                        .into_iter()
                        .map(|(key, value)| {
                            let flash = flashing.with(|f| f.contains(&key));
                            view! {
                                <div class="kpi" class:kpi-flash=flash data-key=key.clone()>
                                    <span class="kpi-label">{label(&key)}</span>
                                    <span class="kpi-value">{format_value(value)}</span>
                                </div>
                            }
                        })
                        .collect_view()
                }}
            </div>
        </section>
    }
    .into_any()
}

#[cfg(feature = "hydrate")]
mod browser {
    use crate::live::{Live, kpi_values::KpiValues, session::Delivery};
    use leptos::prelude::*;
    use std::{cell::RefCell, rc::Rc, time::Duration};

    /// How long a changed tile stays highlighted.
    const FLASH: Duration = Duration::from_millis(1200);

    pub fn attach(
        widget_id: &'static str,
        topic: &'static str,
        tiles: RwSignal<Vec<(String, f64)>>,
        flashing: RwSignal<Vec<String>>,
        live_updates: RwSignal<u64>,
    ) {
        let values = Rc::new(RefCell::new(KpiValues::default()));
        let handler = Rc::new(move |delivery: &Delivery| {
            let mut v = values.borrow_mut();
            match delivery {
                Delivery::Snapshot { series, .. } => v.replace(series),
                Delivery::Update { series, .. } => {
                    let changed = v.merge(series);
                    live_updates.update(|n| *n += 1);
                    flashing.set(changed.clone());
                    set_timeout(move || flashing.update(|f| f.retain(|key| !changed.contains(key))), FLASH);
                }
                Delivery::Gap => return,
                Delivery::Error { code, message } => {
                    return leptos::logging::warn!("livedash: widget {widget_id}: {code:?}: {message}");
                }
            }
            tiles.set(v.iter().map(|(k, value)| (k.clone(), *value)).collect());
        });
        Live::expect().subscribe(widget_id, topic, handler);
    }
}
