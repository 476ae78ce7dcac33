//! A widget's thresholds, set by an admin in the dashboard editor: for a KPI tile one row per key,
//! for a chart one row for its series. Checked here with the server's own
//! [`check_thresholds`](protocol::dashboard::check_thresholds) before it is sent to
//! `PUT /api/dashboards/{id}/widgets/{widget}/thresholds`.

use super::Loaded;
use super::widget_setting::{SaveState, save};
use leptos::prelude::*;
use protocol::dashboard::{WidgetKind, check_thresholds};
use protocol::thresholds::{Direction, Threshold};

/// One row of the form, as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ThresholdRow {
    pub key: String,
    pub above: bool,
    pub warning: String,
    pub critical: String,
    pub for_secs: String,
    pub hysteresis: String,
}

impl ThresholdRow {
    pub fn of(t: &Threshold) -> Self {
        let number = |n: Option<f64>| n.map(|n| n.to_string()).unwrap_or_default();
        Self {
            key: t.key.clone(),
            above: t.direction == Direction::Above,
            warning: number(t.warning),
            critical: number(t.critical),
            for_secs: if t.for_secs == 0 { String::new() } else { t.for_secs.to_string() },
            hysteresis: if t.hysteresis == 0.0 { String::new() } else { t.hysteresis.to_string() },
        }
    }

    fn to_threshold(&self, n: usize) -> Result<Threshold, String> {
        let at = |what: &str| format!("row {}: {what}", n + 1);
        let number = |text: &str, what: &str| -> Result<Option<f64>, String> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<f64>().map(Some).map_err(|_| at(&format!("{what} is not a number")))
        };
        let for_secs = match self.for_secs.trim() {
            "" => 0,
            text => text.parse::<u32>().map_err(|_| at("“for” is whole seconds"))?,
        };
        Ok(Threshold {
            key: self.key.trim().to_owned(),
            direction: if self.above { Direction::Above } else { Direction::Below },
            warning: number(&self.warning, "the warning bound")?,
            critical: number(&self.critical, "the critical bound")?,
            for_secs,
            hysteresis: number(&self.hysteresis, "the hysteresis")?.unwrap_or(0.0),
        })
    }
}

/// The thresholds to send for a widget of `kind`, or why they cannot be (naming the row).
pub fn to_thresholds(kind: WidgetKind, rows: &[ThresholdRow]) -> Result<Vec<Threshold>, String> {
    let list = rows.iter().enumerate().map(|(n, row)| row.to_threshold(n)).collect::<Result<Vec<_>, _>>()?;
    check_thresholds(kind, &list).map_err(|e| match e.strip_prefix("thresholds[") {
        Some(rest) => match rest.split_once("]: ") {
            Some((index, message)) => format!("row {}: {message}", index.parse::<usize>().unwrap_or(0) + 1),
            None => e.clone(),
        },
        None => e.clone(),
    })?;
    Ok(list)
}

/// What the summary says: "Thresholds: none", "Thresholds: orders, returns".
pub fn summary(thresholds: &[Threshold]) -> String {
    if thresholds.is_empty() {
        return "Thresholds: none".into();
    }
    let keys: Vec<&str> = thresholds.iter().map(|t| if t.key.is_empty() { "series" } else { t.key.as_str() }).collect();
    format!("Thresholds: {}", keys.join(", "))
}

#[component]
pub fn ThresholdsEditor(widget: i64, kind: WidgetKind, loaded: RwSignal<Loaded>) -> AnyView {
    let current = move || match loaded.get() {
        Loaded::Ready(v) => v.widgets.iter().find(|w| w.id == widget).map(|w| (w.title.clone(), w.thresholds.clone())),
        _ => None,
    };
    let initial: Vec<ThresholdRow> =
        current().map(|(_, t)| t.iter().map(ThresholdRow::of).collect()).unwrap_or_default();
    let rows = RwSignal::new(initial);
    let state = SaveState::default();
    let SaveState { saved, error } = state;
    let keyed = kind == WidgetKind::KpiTiles;
    let title = move || current().map(|(t, _)| t).unwrap_or_default();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        match to_thresholds(kind, &rows.get_untracked()) {
            Ok(list) => save(loaded, widget, "thresholds", list, state, |w, list| w.thresholds = list),
            Err(e) => error.set(Some(e)),
        }
    };
    let field = move |n: usize,
                      label: &'static str,
                      get: fn(&ThresholdRow) -> String,
                      set: fn(&mut ThresholdRow, String)| {
        view! {
            <label>
                {label}
                <input
                    type="text"
                    inputmode="decimal"
                    prop:value=move || rows.with(|r| r.get(n).map(get).unwrap_or_default())
                    on:input=move |ev| rows.update(|r| if let Some(row) = r.get_mut(n) { set(row, event_target_value(&ev)) })
                />
            </label>
        }
    };
    let row_view = move |n: usize| {
        view! {
            <li class="threshold-row">
                {keyed.then(|| field(n, "Key", |r| r.key.clone(), |r, v| r.key = v))}
                <label>
                    "Bad when"
                    <select on:change=move |ev| {
                        let above = event_target_value(&ev) == "above";
                        rows.update(|r| if let Some(row) = r.get_mut(n) { row.above = above });
                    }>
                        <option value="below" selected=move || rows.with(|r| r.get(n).is_some_and(|x| !x.above))>"below"</option>
                        <option value="above" selected=move || rows.with(|r| r.get(n).is_some_and(|x| x.above))>"above"</option>
                    </select>
                </label>
                {field(n, "Warning", |r| r.warning.clone(), |r, v| r.warning = v)}
                {field(n, "Critical", |r| r.critical.clone(), |r, v| r.critical = v)}
                {field(n, "For (s)", |r| r.for_secs.clone(), |r, v| r.for_secs = v)}
                {field(n, "Hysteresis", |r| r.hysteresis.clone(), |r, v| r.hysteresis = v)}
                <button class="button-quiet" type="button" on:click=move |_| rows.update(|r| { if n < r.len() { r.remove(n); } })>
                    "Remove"
                </button>
            </li>
        }
    };
    view! {
        <details class="thresholds-editor">
            <summary>{move || summary(&current().map(|(_, t)| t).unwrap_or_default())}</summary>
            <form on:submit=submit aria-label=move || format!("Thresholds of {}", title())>
                <ul class="threshold-rows">{move || (0..rows.with(Vec::len)).map(row_view).collect_view()}</ul>
                <button
                    class="button-quiet"
                    type="button"
                    disabled=move || !keyed && rows.with(|r| !r.is_empty())
                    on:click=move |_| rows.update(|r| r.push(ThresholdRow::default()))
                >
                    "Add a threshold"
                </button>
                <button type="submit">"Save thresholds"</button>
                {move || saved.get().then(|| view! { <span class="form-message">"Saved"</span> })}
                {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
            </form>
        </details>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, warning: &str, critical: &str) -> ThresholdRow {
        ThresholdRow { key: key.into(), warning: warning.into(), critical: critical.into(), ..Default::default() }
    }

    #[test]
    fn rows_become_thresholds_or_say_which_row_is_wrong() {
        let list = to_thresholds(WidgetKind::KpiTiles, &[row("orders", "50", "30")]).unwrap();
        assert_eq!(list[0].direction, Direction::Below);
        assert_eq!((list[0].warning, list[0].critical, list[0].for_secs), (Some(50.0), Some(30.0), 0));
        assert_eq!(ThresholdRow::of(&list[0]), row("orders", "50", "30"));
        assert_eq!(
            to_thresholds(WidgetKind::KpiTiles, &[row("orders", "50", "30"), row("x", "fifty", "")]),
            Err("row 2: the warning bound is not a number".into())
        );
        assert_eq!(
            to_thresholds(WidgetKind::KpiTiles, &[row("orders", "30", "50")]),
            Err("row 1: bad when below: the critical bound is below the warning bound".into())
        );
        assert_eq!(to_thresholds(WidgetKind::LineChart, &[row("", "", "100")]).unwrap().len(), 1);
        let slow = ThresholdRow { for_secs: "1.5".into(), ..row("orders", "50", "") };
        assert_eq!(to_thresholds(WidgetKind::KpiTiles, &[slow]), Err("row 1: “for” is whole seconds".into()));
        assert_eq!(summary(&[]), "Thresholds: none");
        assert_eq!(summary(&to_thresholds(WidgetKind::LineChart, &[row("", "2", "1")]).unwrap()), "Thresholds: series");
    }
}
