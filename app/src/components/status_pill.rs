use crate::live::Live;
use leptos::prelude::*;

/// The header's connection indicator: colour and text follow the live connection. While it waits to
/// reconnect it also carries the retry number and its countdown as data attributes, so a test (or a
/// monitoring script) can wait exactly as long as the client says it will. On a fallback transport
/// its tooltip says why, and `data-probe-at` when the faster transport is tried next.
#[component]
pub fn StatusPill() -> AnyView {
    let live = Live::expect();
    let status = live.status;
    let next_probe = live.next_probe;
    view! {
        <span
            class=move || format!("status-pill status-{}", status.get().slug())
            data-status=move || status.get().slug()
            data-attempt=move || status.get().pending_retry().map(|(attempt, _)| attempt)
            data-retry-in=move || status.get().pending_retry().map(|(_, secs)| secs)
            data-probe-at=move || next_probe.get().filter(|_| status.get().probes()).map(|at| at as u64)
            role="status"
            aria-live="polite"
            aria-label=move || format!("Connection: {}", status.get())
            title=move || status.get().explanation()
        >
            <span class="status-dot" aria-hidden="true"></span>
            {move || status.get().to_string()}
        </span>
    }
    .into_any()
}
