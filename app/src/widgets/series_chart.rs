//! Line and bar charts of a `series` topic, drawn by ECharts through charming.
//!
//! The chart is created once, when the widget mounts; every later change only merges the new data
//! into it (`setOption` merges by default), so ECharts animates the new points in instead of
//! drawing a new chart. Only a calm chart animates an update (see [`animates`]): one fed every
//! second would be in motion most of the time.
//!
//! A chart with a threshold draws its bounds as lines and colours the points past them; under the
//! chart, words say the bounds and the latest point's state (`✖ Critical · below 30`), so neither
//! depends on telling colours apart.

use super::frame::{Framed, WidgetFrame};
use super::threshold_view::{legend, state_words};
use crate::live::{series_buffer::SeriesBuffer, use_topic};
use leptos::prelude::*;
use protocol::dashboard::{WidgetDef, WidgetKind, WidgetMode};
use protocol::thresholds::Threshold;

/// Bars shown by a bar chart (a line shows the whole window).
pub const BARS: usize = 30;

#[component]
pub fn SeriesChart(
    def: WidgetDef,
    mode: WidgetMode,
    /// The widget's thresholds as saved now (a chart has at most one; it may change while shown).
    thresholds: Memo<Vec<Threshold>>,
) -> AnyView {
    let feed = use_topic::<SeriesBuffer>(&def.dom_id(), &def.topic, mode);
    let chart_dom_id = format!("chart-{}", def.dom_id());
    let kind = def.kind;
    let shown = Signal::derive(move || feed.data.with(|b| shown(kind, b)));
    let title = def.title.clone();
    let threshold = Memo::new(move |_| thresholds.with(|t| t.first().cloned()));
    let latest = move || feed.data.with(|b| b.points().last().map(|p| p.value));
    let state =
        move || threshold.with(|t| t.as_ref().zip(latest()).map(|(t, value)| t.level_of(value))).unwrap_or_default();

    #[cfg(feature = "hydrate")]
    browser::draw(kind, title.clone(), chart_dom_id.clone(), feed.data, threshold);

    let label = format!("{title}, {}", if kind == WidgetKind::BarChart { "bar chart" } else { "line chart" });
    let said = move || {
        threshold.with(|t| {
            t.as_ref().map(|t| {
                let now = state();
                view! {
                    <p class=format!("chart-thresholds chart-{}", now.as_str()) data-state=now.as_str()>
                        <span class="chart-legend">{legend(t)}</span>
                        {state_words(t, now).map(|words| view! { <span class="chart-state">{words}</span> })}
                    </p>
                }
            })
        })
    };
    view! {
        <WidgetFrame framed=Framed::new(&def, feed) points=shown>
            <div class="chart" id=chart_dom_id role="img" aria-label=label></div>
            {said}
        </WidgetFrame>
    }
    .into_any()
}

/// How long an update's points take to move into place, on a calm chart.
#[cfg(feature = "hydrate")]
const UPDATE_ANIMATION_MS: f64 = 200.0;
/// A chart whose previous update was drawn this recently is busy.
#[cfg(any(feature = "hydrate", test))]
const CALM_AFTER_MS: f64 = 2000.0;

/// Whether an update drawn `since_last` ms after the previous one slides into place. A busy chart
/// (updates under two seconds apart) draws each at once: the slide draws the eye to a change, which
/// on such a chart is always there, and each of its frames redraws the whole chart on the page's
/// main thread (the demo dashboard's two charts, updated about once a second, kept the page
/// drawing 20 frames a second: 6 % of a core).
#[cfg(any(feature = "hydrate", test))]
fn animates(since_last: Option<f64>) -> bool {
    since_last.is_none_or(|gap| gap >= CALM_AFTER_MS)
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
    use super::{UPDATE_ANIMATION_MS, animates, shown};
    use crate::live::{documents::clock_time, series_buffer::SeriesBuffer};
    use crate::widgets::threshold_view::{Band, axis_range, bands, state_colour};
    use charming::{
        Chart, Echarts, WasmRenderer,
        component::{Axis, Grid, VisualMap, VisualMapPiece, VisualMapType},
        element::{
            AxisLabel, AxisType, Label, LabelPosition, LineStyle, LineStyleType, MarkLine, MarkLineData,
            MarkLineVariant, Symbol, Tooltip, Trigger,
        },
        series::{Bar, Line},
        theme::Theme,
    };
    use leptos::prelude::*;
    use protocol::dashboard::WidgetKind;
    use protocol::thresholds::{Threshold, ThresholdState};
    use std::{cell::RefCell, rc::Rc};

    /// The chart, and the threshold it was drawn with.
    type Drawn = Option<(Echarts, Option<Threshold>)>;

    /// Draws the chart once mounted, then at most once per animation frame however many updates
    /// arrive between two frames: a frame shows only the last of them anyway, and each draw costs
    /// ECharts a layout of the whole series. The chart is disposed of when the widget goes:
    /// ECharts keeps every instance (its canvas, its data) in a registry of its own until then.
    pub fn draw(
        kind: WidgetKind,
        title: String,
        dom_id: String,
        data: RwSignal<SeriesBuffer>,
        threshold: Memo<Option<Threshold>>,
    ) {
        let chart: Rc<RefCell<Drawn>> = Rc::new(RefCell::new(None));
        let frame_asked = StoredValue::new_local(false);
        // When the last update was drawn (`Date.now()`), to tell a calm chart from a busy one.
        let last_drawn = StoredValue::new_local(None::<f64>);
        let owned = send_wrapper::SendWrapper::new(chart.clone());
        on_cleanup(move || {
            if let Some((chart, _)) = owned.take().borrow_mut().take() {
                dispose(&chart);
            }
        });
        Effect::new(move |_| {
            data.track();
            threshold.track();
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
                let now = js_sys::Date::now();
                let animate = animates(last_drawn.try_get_value().flatten().map(|then| now - then));
                let _ = last_drawn.try_set_value(Some(now));
                let threshold = threshold.try_get_untracked().flatten();
                data.try_with_untracked(|buffer| {
                    render(&mut chart.borrow_mut(), kind, &title, &dom_id, buffer, threshold, animate)
                });
            });
        });
    }

    /// Merges the buffer's data into the chart, creating the chart the first time. An emptied
    /// buffer (the topic rules took the topic away) starts a fresh chart: merging an empty series
    /// would keep the old points, since charming leaves empty data out of the option. So does a
    /// changed threshold: a merge cannot take its lines and colours away.
    fn render(
        chart: &mut Drawn,
        kind: WidgetKind,
        title: &str,
        dom_id: &str,
        buffer: &SeriesBuffer,
        threshold: Option<Threshold>,
        animate: bool,
    ) {
        let outdated = chart.as_ref().is_some_and(|(_, drawn)| buffer.is_empty() || *drawn != threshold);
        if outdated && let Some((old, _)) = chart.take() {
            dispose(&old);
        }
        let option = data_only(kind, buffer, threshold.as_ref()).animation_duration_update(if animate {
            UPDATE_ANIMATION_MS
        } else {
            0.0
        });
        match chart {
            Some((existing, _)) => WasmRenderer::update(existing, &option),
            None => {
                let dark = page_is_dark();
                let theme = if dark { Theme::Dark } else { Theme::Default };
                let renderer = WasmRenderer::new_opt(None, None).theme(theme);
                match renderer.render(dom_id, &base_chart(kind, title, threshold.as_ref(), dark)) {
                    Ok(created) => {
                        WasmRenderer::update(&created, &option);
                        *chart = Some((created, threshold));
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

    /// Whether the page is dark (its own choice, `data-theme` on the root, as a wall display makes;
    /// else the system's): the chart then takes ECharts' own dark theme, so axes and labels stay
    /// legible.
    fn page_is_dark() -> bool {
        let chosen = document().document_element().and_then(|root| root.get_attribute("data-theme"));
        match chosen.as_deref() {
            Some("dark") => true,
            Some("light") => false,
            _ => {
                window().match_media("(prefers-color-scheme: dark)").ok().flatten().is_some_and(|query| query.matches())
            }
        }
    }

    /// The first colour of the theme's palette: what the series is drawn in where it is fine.
    fn series_colour(dark: bool) -> &'static str {
        if dark { "#4992ff" } else { "#5470c6" }
    }

    /// Colours every point by the band its value is in (the points past a bound in its state's
    /// colour), without a legend of its own: the words under the chart are the legend.
    fn colour_by(threshold: &Threshold, dark: bool) -> VisualMap {
        let piece = |band: &Band| {
            let colour = state_colour(band.state, dark).unwrap_or(series_colour(dark));
            let mut piece = VisualMapPiece::new().color(colour);
            if let Some(low) = band.low {
                piece = if band.low_inclusive { piece.gte(low) } else { piece.gt(low) };
            }
            if let Some(high) = band.high {
                piece = if band.high_inclusive { piece.lte(high) } else { piece.lt(high) };
            }
            piece
        };
        VisualMap::new()
            .type_(VisualMapType::Piecewise)
            .show(false)
            .series_index(0)
            .pieces(bands(threshold).iter().map(piece).collect::<Vec<_>>())
    }

    /// An invisible series that only draws one bound, as a dashed line in its state's colour,
    /// labelled at its end (`Critical 30`).
    fn bound_line(state: ThresholdState, bound: f64, dark: bool) -> Line {
        let name = if state == ThresholdState::Critical { "Critical" } else { "Warning" };
        let colour = state_colour(state, dark).unwrap_or(series_colour(dark));
        Line::new().name(name).mark_line(
            MarkLine::new()
                .silent(true)
                .symbol(vec![Symbol::None, Symbol::None])
                .line_style(LineStyle::new().color(colour).type_(LineStyleType::Dashed).width(1.5))
                .label(
                    Label::new()
                        .position(LabelPosition::InsideEndTop)
                        .formatter(format!("{name} {bound}").as_str())
                        .color(colour),
                )
                .data(vec![MarkLineVariant::Simple(MarkLineData::new().y_axis(bound))]),
        )
    }

    fn base_chart(kind: WidgetKind, title: &str, threshold: Option<&Threshold>, dark: bool) -> Chart {
        let mut chart = Chart::new()
            // The card behind the chart provides the background in both themes.
            .background_color("transparent")
            .grid(Grid::new().left(48).right(16).top(16).bottom(32))
            .tooltip(Tooltip::new().trigger(Trigger::Axis))
            // Points come in over 200 ms, not ECharts' 1,000: a chart fed every second or so was in
            // motion nearly all the time, each frame a redraw of the whole chart on the page's
            // main thread (the demo dashboard's two charts redrew 56 times a second). How moved
            // points animate, each update says itself (`render`, `animates`).
            .animation_duration(UPDATE_ANIMATION_MS);
        chart = match kind {
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
        };
        if let Some(threshold) = threshold {
            chart = chart.visual_map(colour_by(threshold, dark));
            for (state, bound) in
                [(ThresholdState::Warning, threshold.warning), (ThresholdState::Critical, threshold.critical)]
            {
                if let Some(bound) = bound {
                    chart = chart.series(bound_line(state, bound, dark));
                }
            }
        }
        chart
    }

    /// Only the data (and, with a threshold, the value axis' range, so the bounds stay in view):
    /// merged into the existing option, it leaves the rest as it is. The series is the first; the
    /// bounds' series after it are left alone.
    fn data_only(kind: WidgetKind, buffer: &SeriesBuffer, threshold: Option<&Threshold>) -> Chart {
        let skip = buffer.len() - shown(kind, buffer);
        let points = || buffer.points().skip(skip);
        let values = points().map(|p| p.value);
        let range = threshold.and_then(|t| axis_range(values, t, kind == WidgetKind::BarChart));
        let points = points();
        let value_axis = range.map(|(min, max)| Axis::new().min(min).max(max));
        let chart = match kind {
            WidgetKind::BarChart => {
                let (times, values): (Vec<String>, Vec<f64>) = points.map(|p| (clock_time(p.ts), p.value)).unzip();
                Chart::new().x_axis(Axis::new().data(times)).series(Bar::new().data(values))
            }
            _ => Chart::new().series(Line::new().data(points.map(|p| vec![p.ts as f64, p.value]).collect())),
        };
        match value_axis {
            Some(axis) => chart.y_axis(axis),
            None => chart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::animates;

    #[test]
    fn only_a_calm_chart_slides_its_updates_in() {
        assert!(animates(None), "the first update after the chart is drawn");
        assert!(animates(Some(2000.0)), "two seconds after the last");
        assert!(animates(Some(60_000.0)));
        assert!(!animates(Some(1999.0)), "a chart fed every second or so draws at once");
        assert!(!animates(Some(0.0)));
    }
}
