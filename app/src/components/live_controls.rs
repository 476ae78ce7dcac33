use crate::live::{Live, status::ConnectionStatus};
use leptos::prelude::*;

/// Next to the pill: when data last arrived, manual refresh, the global live switch, and Retry when
/// the connection gave up.
#[component]
pub fn LiveControls() -> AnyView {
    let live = Live::expect();
    // Ticks once a second in the browser, so "3 s ago" keeps counting.
    let now = RwSignal::new(0.0_f64);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        now.set(js_sys::Date::now());
        let tick = set_interval_with_handle(move || now.set(js_sys::Date::now()), std::time::Duration::from_secs(1));
        if let Ok(tick) = tick {
            on_cleanup(move || tick.clear());
        }
    });

    // The server-rendered page already shows the switch, as it will be (on), but a click on it
    // before the app runs in the browser would flip the box and nothing else (and hydration would
    // flip it back): it takes clicks once the app runs. (An effect runs only in the browser.)
    let running = RwSignal::new(false);
    Effect::new(move |_| running.set(true));

    let status = live.status;
    let updated = move || live.last_update.get().map(|at| format!("Updated {}", ago(now.get() - at)));
    let switched_on = move || status.get() != ConnectionStatus::Paused;
    let retryable = move || {
        matches!(
            status.get(),
            ConnectionStatus::Offline | ConnectionStatus::LiveOff | ConnectionStatus::Reconnecting { .. }
        )
    };
    let refresh = move |_| live.refresh_all();
    let toggle = move |ev: leptos::ev::Event| live.set_live(event_target_checked(&ev));
    let retry = move |_| live.retry();

    view! {
        <span class="updated">{updated}</span>
        <Show when=retryable>
            <button class="button-quiet" type="button" on:click=retry>"Retry"</button>
        </Show>
        <button
            class="button-quiet"
            type="button"
            aria-label="Refresh all widgets now"
            disabled=move || !status.get().is_receiving()
            on:click=refresh
        >
            "Refresh"
        </button>
        <label class="live-switch">
            <input
                type="checkbox"
                role="switch"
                checked=switched_on
                prop:checked=switched_on
                disabled=move || !running.get()
                on:change=toggle
            />
            "Live updates"
        </label>
    }
    .into_any()
}

/// A duration in milliseconds as a person reads it: "just now", "12 s ago", "3 min ago", "2 h ago".
pub fn ago(ms: f64) -> String {
    let secs = (ms / 1000.0).floor().max(0.0) as u64;
    match secs {
        0 => "just now".into(),
        1..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::ago;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(ago(-5.0), "just now", "a clock a little ahead of the data");
        assert_eq!(ago(400.0), "just now");
        assert_eq!(ago(3_200.0), "3 s ago");
        assert_eq!(ago(125_000.0), "2 min ago");
        assert_eq!(ago(7_300_000.0), "2 h ago");
    }
}
