//! A widget's alert history, for everyone who sees the widget: under each KPI tile or chart with
//! thresholds, *Alert history* opens the latest alerts its thresholds raised (newest first, as
//! `GET /api/dashboards/{id}/widgets/{widget}/alerts` answers), read when opened.

use leptos::prelude::*;
use protocol::thresholds::{AlertRecord, ThresholdState};

/// One alert as a line: `12:03:04 · orders critical at 20 (was ok)`.
pub fn alert_line(alert: &AlertRecord, time: &str) -> String {
    let subject = if alert.key.is_empty() { String::new() } else { format!("{} ", alert.key) };
    let value = format!("{}", alert.value);
    match alert.to {
        ThresholdState::Ok => format!("{time} · {subject}back to normal at {value} (was {})", alert.from.as_str()),
        state => format!("{time} · {subject}{} at {value} (was {})", state.as_str(), alert.from.as_str()),
    }
}

#[component]
pub fn AlertHistory(dashboard: i64, widget: i64) -> AnyView {
    let alerts = RwSignal::new(None::<Result<Vec<AlertRecord>, String>>);
    let on_toggle = move |ev: leptos::ev::Event| {
        let open = event_target::<leptos::web_sys::Element>(&ev).has_attribute("open");
        if !open {
            return;
        }
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let url = format!("/api/dashboards/{dashboard}/widgets/{widget}/alerts");
            let read = match crate::http::fetch("GET", &url, None).await {
                Ok(reply) if reply.status == 200 => serde_json::from_str(&reply.text).map_err(|e| e.to_string()),
                Ok(reply) => Err(format!("the server answered {}", reply.status)),
                Err(e) => Err(e),
            };
            alerts.set(Some(read));
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (dashboard, widget);
    };
    let lines = move || match alerts.get() {
        None => view! { <p class="form-note">"Reading…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="form-error" role="alert">{format!("Not read: {e}")}</p> }.into_any(),
        Some(Ok(list)) if list.is_empty() => view! { <p class="form-note">"No alerts yet."</p> }.into_any(),
        Some(Ok(list)) => view! {
            <ol class="alert-lines">
                {list
                    .iter()
                    .map(|alert| {
                        let line = alert_line(alert, &crate::live::documents::clock_time(alert.at));
                        view! { <li class=format!("alert-line alert-{}", alert.to.as_str())>{line}</li> }
                    })
                    .collect_view()}
            </ol>
        }
        .into_any(),
    };
    view! {
        <details class="alert-history" on:toggle=on_toggle>
            <summary>"Alert history"</summary>
            {lines}
        </details>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_reads_as_a_line() {
        let alert = |key: &str, from, to, value| AlertRecord { key: key.into(), from, to, value, since: 0, at: 0 };
        assert_eq!(
            alert_line(&alert("orders", ThresholdState::Ok, ThresholdState::Critical, 20.0), "12:03:04"),
            "12:03:04 · orders critical at 20 (was ok)"
        );
        assert_eq!(
            alert_line(&alert("", ThresholdState::Warning, ThresholdState::Ok, 55.5), "12:04:00"),
            "12:04:00 · back to normal at 55.5 (was warning)"
        );
    }
}
