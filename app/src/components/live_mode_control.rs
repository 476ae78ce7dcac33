use crate::live::{Identity, Live};
use leptos::prelude::*;
use protocol::LiveMode;

/// For admins only: how this workspace's dashboards get their updates (`live`, `polling`, `off`),
/// read from and saved to `/api/admin/live-mode`. A switch reaches every open page at once; the
/// line beside the control says what the server answered.
#[component]
pub fn LiveModeControl() -> AnyView {
    let identity = Live::expect().identity;
    let is_admin = move || matches!(identity.get(), Identity::Known(account) if account.role == "admin");
    // `None` until the server said.
    let mode = RwSignal::new(None::<LiveMode>);
    let message = RwSignal::new(String::new());
    // Bumped to ask again when the first read failed (the server restarting, a network blip).
    #[cfg(feature = "hydrate")]
    let attempt = RwSignal::new(0_u32);

    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        attempt.track();
        if !is_admin() || mode.get_untracked().is_some() {
            return;
        }
        leptos::task::spawn_local(async move {
            match load().await {
                Ok(current) => {
                    mode.set(Some(current));
                    message.set(String::new());
                }
                Err(error) => {
                    message.set(error);
                    set_timeout(move || attempt.update(|a| *a += 1), std::time::Duration::from_secs(5));
                }
            }
        });
    });

    let change = move |ev: leptos::ev::Event| {
        let Some(wanted) = LiveMode::parse(&event_target_value(&ev)) else { return };
        let before = mode.get_untracked();
        mode.set(Some(wanted));
        message.set("Saving…".into());
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let body = serde_json::json!({ "mode": wanted });
            match crate::http::send_json("PUT", "/api/admin/live-mode", Some(&body)).await {
                Ok(_) => message.set(format!("Saved: {}", label(wanted))),
                Err(error) => {
                    mode.set(before);
                    message.set(format!("Not saved: {error}"));
                }
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = before;
    };

    view! {
        <Show when=is_admin>
            <label class="live-mode-control">
                <span class="live-mode-label">"Workspace"</span>
                // `prop:value`, not `selected` on the options: an attribute stops steering a select
                // once the user has changed it, and a refused save must show the mode that holds.
                <select
                    aria-label="Live mode for this workspace"
                    data-mode=move || mode.get().map(LiveMode::as_str)
                    disabled=move || mode.get().is_none()
                    prop:value=move || mode.get().map_or("", LiveMode::as_str)
                    on:change=change
                >
                    {LiveMode::ALL
                        .map(|option| view! { <option value=option.as_str()>{label(option)}</option> })
                        .to_vec()}
                </select>
                <span class="live-mode-message" aria-live="polite">{move || message.get()}</span>
            </label>
        </Show>
    }
    .into_any()
}

/// What the control calls each mode.
fn label(mode: LiveMode) -> &'static str {
    match mode {
        LiveMode::Live => "Live",
        LiveMode::Polling => "Polling only",
        LiveMode::Off => "Live updates off",
    }
}

#[cfg(feature = "hydrate")]
async fn load() -> Result<LiveMode, String> {
    #[derive(serde::Deserialize)]
    struct Body {
        mode: LiveMode,
    }
    let (status, text) = crate::http::call("GET", "/api/admin/live-mode", None).await?;
    if status != 200 {
        return Err(format!("the live mode could not be read (the server answered {status})"));
    }
    serde_json::from_str::<Body>(&text).map(|body| body.mode).map_err(|e| e.to_string())
}
