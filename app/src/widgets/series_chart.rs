//! Line and bar charts of a `series` topic, drawn by ECharts through charming.
//!
//! The chart is created once, when the widget mounts; every later change only merges the new data
//! into it (`setOption` merges by default), so ECharts animates the new points in instead of
//! drawing a new chart.

use super::frame::{Framed, WidgetFrame};
use crate::live::{series_buffer::SeriesBuffer, use_topic};
use leptos::prelude::*;
use protocol::dashboard::{WidgetDef, WidgetKind, WidgetMode};

/// Bars shown by a bar chart (a line shows the whole window).
pub const BARS: usize = 30;

#[component]
pub fn SeriesChart(def: WidgetDef, mode: WidgetMode) -> AnyView {
    let feed = use_topic::<SeriesBuffer>(&def.dom_id(), &def.topic, mode);
    let chart_dom_id = format!("chart-{}", def.dom_id());
    let kind = def.kind;
    let shown = Signal::derive(move || feed.data.with(|b| shown(kind, b)));
    let title = def.title.clone();

    #[cfg(feature = "hydrate")]
    browser::draw(kind, title.clone(), chart_dom_id.clone(), feed.data);

    let label = format!("{title}, {}", if kind == WidgetKind::BarChart { "bar chart" } else { "line chart" });
    view! {
        <WidgetFrame framed=Framed::new(&def, feed) points=shown>
            <div class="chart" id=chart_dom_id role="img" aria-label=label></div>
        </WidgetFrame>
    }
    .into_any()
}

/// How many points the chart shows of what the buffer holds.
fn shown(kind: WidgetKind, buffer: &SeriesBuffer) -> usize {
    match kind {
        WidgetKind::BarChart => buffer.len().min(BARS),
        _ => buffer.len(),
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::shown;
    use crate::live::{documents::clock_time, series_buffer::SeriesBuffer};
    use charming::{
        Chart, Echarts, WasmRenderer,
        component::{Axis, Grid},
        element::{AxisLabel, AxisType, Tooltip, Trigger},
        series::{Bar, Line},
        theme::Theme,
    };
    use leptos::prelude::*;
    use protocol::dashboard::WidgetKind;
    use std::{cell::RefCell, rc::Rc};

    /// Draws the chart once mounted, then at most once per animation frame however many updates
    /// arrive between two frames: a frame shows only the last of them anyway, and each draw costs
    /// ECharts a layout of the whole series. The chart is disposed of when the widget goes:
    /// ECharts keeps every instance (its canvas, its data) in a registry of its own until then.
    pub fn draw(kind: WidgetKind, title: String, dom_id: String, data: RwSignal<SeriesBuffer>) {
        let chart = Rc::new(RefCell::new(None::<Echarts>));
        let frame_asked = StoredValue::new_local(false);
        let owned = send_wrapper::SendWrapper::new(chart.clone());
        on_cleanup(move || {
            if let Some(chart) = owned.take().borrow_mut().take() {
                dispose(&chart);
            }
        });
        Effect::new(move |_| {
            data.track();
            if frame_asked.try_get_value() != Some(false) {
                return;
            }
            frame_asked.set_value(true);
            let (title, dom_id, chart) = (title.clone(), dom_id.clone(), chart.clone());
            request_animation_frame(move || {
                // The widget may have gone since: its values are disposed then.
                if frame_asked.try_set_value(false).is_some() {
                    return;
                }
                data.try_with_untracked(|buffer| render(&mut chart.borrow_mut(), kind, &title, &dom_id, buffer));
            });
        });
    }

    /// Merges the buffer's data into the chart, creating the chart the first time. An emptied
    /// buffer (the topic rules took the topic away) starts a fresh chart: merging an empty series
    /// would keep the old points, since charming leaves empty data out of the option.
    fn render(chart: &mut Option<Echarts>, kind: WidgetKind, title: &str, dom_id: &str, buffer: &SeriesBuffer) {
        if buffer.is_empty()
            && let Some(old) = chart.take()
        {
            dispose(&old);
        }
        let option = data_only(kind, buffer);
        match chart {
            Some(existing) => WasmRenderer::update(existing, &option),
            None => {
                let renderer = WasmRenderer::new_opt(None, None).theme(system_theme());
                match renderer.render(dom_id, &base_chart(kind, title)) {
                    Ok(created) => {
                        WasmRenderer::update(&created, &option);
                        *chart = Some(created);
                    }
                    Err(e) => leptos::logging::error!("livedash: chart {dom_id}: {e:?}"),
                }
            }
        }
    }

    /// `chart.dispose()`, which charming does not bind.
    fn dispose(chart: &Echarts) {
        let chart: &wasm_bindgen::JsValue = chart.as_ref();
        if let Ok(dispose) = js_sys::Reflect::get(chart, &"dispose".into())
            && let Some(dispose) = wasm_bindgen::JsCast::dyn_ref::<js_sys::Function>(&dispose)
        {
            let _ = dispose.call0(chart);
        }
    }

    /// ECharts' own dark theme when the system asks for dark, so axes and labels stay legible.
    fn system_theme() -> Theme {
        let dark =
            window().match_media("(prefers-color-scheme: dark)").ok().flatten().is_some_and(|query| query.matches());
        if dark { Theme::Dark } else { Theme::Default }
    }

    fn base_chart(kind: WidgetKind, title: &str) -> Chart {
        let chart = Chart::new()
            // The card behind the chart provides the background in both themes.
            .background_color("transparent")
            .grid(Grid::new().left(48).right(16).top(16).bottom(32))
            .tooltip(Tooltip::new().trigger(Trigger::Axis));
        match kind {
            // Bars sit on a category axis of their times: evenly spaced, however few there are.
            WidgetKind::BarChart => chart
                .x_axis(Axis::new().type_(AxisType::Category))
                .y_axis(Axis::new().type_(AxisType::Value))
                .series(Bar::new().name(title)),
            _ => chart
                .x_axis(
                    Axis::new()
                        .type_(AxisType::Time)
                        // Few, short labels: a narrow card must not print them on top of each other.
                        .split_number(4)
                        .axis_label(AxisLabel::new().formatter("{HH}:{mm}:{ss}")),
                )
                .y_axis(Axis::new().type_(AxisType::Value).scale(true))
                .series(Line::new().name(title).show_symbol(false).smooth(true)),
        }
    }

    /// Only the data: merged into the existing option, it leaves axes and styling as they are.
    fn data_only(kind: WidgetKind, buffer: &SeriesBuffer) -> Chart {
        let skip = buffer.len() - shown(kind, buffer);
        let points = buffer.points().skip(skip);
        match kind {
            WidgetKind::BarChart => {
                let (times, values): (Vec<String>, Vec<f64>) = points.map(|p| (clock_time(p.ts), p.value)).unzip();
                Chart::new().x_axis(Axis::new().data(times)).series(Bar::new().data(values))
            }
            _ => Chart::new().series(Line::new().data(points.map(|p| vec![p.ts as f64, p.value]).collect())),
        }
    }
}
