//! A line chart of a `series` topic, drawn by ECharts through charming.
//!
//! The chart is created once, when the widget mounts; every later message only merges the new data
//! into it (`setOption` merges by default), so ECharts animates the new points in instead of
//! redrawing a new chart.

use leptos::prelude::*;

#[component]
pub fn LineChart(
    /// Identifies the widget on the connection (unique per page).
    widget_id: &'static str,
    /// Topic name, relative to the tenant.
    topic: &'static str,
    title: &'static str,
) -> AnyView {
    let chart_dom_id = format!("chart-{widget_id}");
    // Exposed as data attributes so tests and people can see what the chart holds.
    let shown = RwSignal::new(0usize);
    let live_updates = RwSignal::new(0u64);
    let gaps = RwSignal::new(0u64);
    let offset = RwSignal::new(None::<u64>);

    #[cfg(feature = "hydrate")]
    browser::attach(browser::Binding {
        widget_id,
        topic,
        title,
        chart_dom_id: chart_dom_id.clone(),
        shown,
        live_updates,
        gaps,
        offset,
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = topic;

    view! {
        <section
            class="widget widget-line"
            data-widget-id=widget_id
            data-points=move || shown.get()
            data-updates=move || live_updates.get()
            data-gaps=move || gaps.get()
            data-offset=move || offset.get().map(|o| o.to_string()).unwrap_or_default()
        >
            <header class="widget-header">
                <h2>{title}</h2>
                <span class="mode-badge">"Live"</span>
            </header>
            <div class="chart" id=chart_dom_id role="img" aria-label=format!("{title}, line chart")></div>
        </section>
    }
    .into_any()
}

#[cfg(feature = "hydrate")]
mod browser {
    use crate::live::{Live, series_buffer::SeriesBuffer, session::Delivery};
    use crate::protocol::{Item, Point};
    use charming::{
        Chart, Echarts, WasmRenderer,
        component::{Axis, Grid},
        element::{AxisLabel, AxisType, Tooltip, Trigger},
        series::Line,
        theme::Theme,
    };
    use leptos::prelude::*;
    use std::{cell::RefCell, rc::Rc};

    /// How many points a chart keeps on screen.
    const WINDOW: usize = 120;

    pub struct Binding {
        pub widget_id: &'static str,
        pub topic: &'static str,
        pub title: &'static str,
        pub chart_dom_id: String,
        pub shown: RwSignal<usize>,
        pub live_updates: RwSignal<u64>,
        pub gaps: RwSignal<u64>,
        pub offset: RwSignal<Option<u64>>,
    }

    struct View {
        buffer: SeriesBuffer,
        chart: Option<Echarts>,
    }

    pub fn attach(b: Binding) {
        let live = Live::expect();
        let view = Rc::new(RefCell::new(View { buffer: SeriesBuffer::new(WINDOW), chart: None }));

        // The element exists only once the view is mounted, hence an effect.
        Effect::new({
            let view = view.clone();
            let dom_id = b.chart_dom_id.clone();
            move |_| {
                let mut v = view.borrow_mut();
                let renderer = WasmRenderer::new_opt(None, None).theme(system_theme());
                match renderer.render(&dom_id, &base_chart(b.title)) {
                    Ok(chart) => {
                        WasmRenderer::update(&chart, &data_only(v.buffer.points().copied()));
                        v.chart = Some(chart);
                    }
                    Err(e) => leptos::logging::error!("livedash: chart {dom_id}: {e:?}"),
                }
            }
        });

        let handler = Rc::new(move |delivery: &Delivery| {
            let mut v = view.borrow_mut();
            let meta = match delivery {
                Delivery::Snapshot { series, meta } => {
                    v.buffer.replace(points_of(series));
                    meta
                }
                Delivery::Update { series, meta, .. } => {
                    v.buffer.append(points_of(series));
                    b.live_updates.update(|n| *n += 1);
                    meta
                }
                Delivery::Gap => {
                    // Announced on the widget; the snapshot that follows replaces everything.
                    return b.gaps.update(|n| *n += 1);
                }
                Delivery::Error { code, message } => {
                    return leptos::logging::warn!("livedash: widget {}: {code:?}: {message}", b.widget_id);
                }
            };
            if let Some(chart) = &v.chart {
                WasmRenderer::update(chart, &data_only(v.buffer.points().copied()));
            }
            b.shown.set(v.buffer.len());
            b.offset.set(Some(meta.offset));
        });
        live.subscribe(b.widget_id, b.topic, handler);
    }

    /// ECharts' own dark theme when the system asks for dark, so axes and labels stay legible.
    fn system_theme() -> Theme {
        let dark =
            window().match_media("(prefers-color-scheme: dark)").ok().flatten().is_some_and(|query| query.matches());
        if dark { Theme::Dark } else { Theme::Default }
    }

    fn base_chart(title: &str) -> Chart {
        Chart::new()
            // The card behind the chart provides the background in both themes.
            .background_color("transparent")
            .grid(Grid::new().left(48).right(16).top(16).bottom(32))
            .tooltip(Tooltip::new().trigger(Trigger::Axis))
            .x_axis(
                Axis::new()
                    .type_(AxisType::Time)
                    // Few, short labels: a narrow card must not print them on top of each other.
                    .split_number(4)
                    .axis_label(AxisLabel::new().formatter("{HH}:{mm}:{ss}")),
            )
            .y_axis(Axis::new().type_(AxisType::Value).scale(true))
            .series(Line::new().name(title).show_symbol(false).smooth(true))
    }

    fn points_of(items: &[Item]) -> impl Iterator<Item = Point> + '_ {
        items.iter().filter_map(Item::as_point).copied()
    }

    /// Only the data: merged into the existing option, it leaves axes and styling as they are.
    fn data_only(points: impl Iterator<Item = Point>) -> Chart {
        let data: Vec<Vec<f64>> = points.map(|p| vec![p.ts as f64, p.value]).collect();
        Chart::new().series(Line::new().data(data))
    }
}
