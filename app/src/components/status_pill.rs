use crate::live::Live;
use leptos::prelude::*;

/// The header's connection indicator: colour and text follow the live connection.
#[component]
pub fn StatusPill() -> AnyView {
    let status = Live::expect().status;
    view! {
        <span
            class=move || format!("status-pill status-{}", status.get().slug())
            data-status=move || status.get().slug()
            role="status"
            aria-live="polite"
            aria-label=move || format!("Connection: {}", status.get())
        >
            <span class="status-dot" aria-hidden="true"></span>
            {move || status.get().to_string()}
        </span>
    }
    .into_any()
}
