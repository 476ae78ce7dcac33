//! A wall display (`/display/{id}`, its link's secret in the fragment): the screen of an operations
//! room, run for months with nobody at it.
//!
//! Opening the link trades the secret for a display session (the secret leaves the address bar at
//! once); a screen that has one already just asks what it shows. Then the page shows its
//! dashboards full screen, one after the other every `rotateSecs`: the title, the display's name
//! and a clock in large type, the widgets as on any dashboard, and no controls. Its connection never
//! gives up ([`page_kind`](crate::live::page_kind)); while it has been without data for longer than
//! the display's threshold it says so across the screen ("Data is 3 min old — reconnecting"), so
//! the room never trusts a frozen screen. It reloads itself when the server's build changes (a
//! deploy) or its dashboards do, and shows "This display was revoked" when it was.

use crate::live::{Live, page_kind};
use crate::widgets::widget_view;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use protocol::dashboard::{DashboardView, WidgetMode};
use protocol::display::DisplayBrief;

/// Where the page stands.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code, reason = "the server renders Opening only"))]
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Opening,
    Showing(DisplayBrief),
    /// The link or session is not (or no longer) good: what to do about it.
    Invalid(String),
    Revoked,
}

/// How often the page asks what it shows (its settings, the build; and the server notes it seen).
#[cfg(feature = "hydrate")]
const BRIEF_EVERY_MS: u32 = 60_000;

/// Which of `count` dashboards shows `elapsed_ms` after the page started, each for `rotate_secs`.
pub fn rotation_index(elapsed_ms: f64, rotate_secs: u32, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let turns = (elapsed_ms.max(0.0) / (f64::from(rotate_secs.max(1)) * 1000.0)).floor() as usize;
    turns % count
}

/// What the screen says across itself when its data is older than `stale_secs`: `None` while it
/// is fresh. `last_live_ms` is when the connection last delivered or was known live.
pub fn stale_words(now_ms: f64, last_live_ms: f64, stale_secs: u32) -> Option<String> {
    let age = ((now_ms - last_live_ms) / 1000.0).max(0.0) as u64;
    (age > u64::from(stale_secs)).then(|| format!("Data is {} old — reconnecting", age_words(age)))
}

fn age_words(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 48 * 3600 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// The time now (ms since the Unix epoch); the server renders no clock.
fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    return js_sys::Date::now();
    #[cfg(not(feature = "hydrate"))]
    0.0
}

#[component]
pub fn DisplayPage() -> AnyView {
    let params = use_params_map();
    let id = params.with_untracked(|p| p.get("id").and_then(|id| id.parse::<i64>().ok()));
    let phase = RwSignal::new(Phase::Opening);
    #[cfg(feature = "hydrate")]
    {
        page_kind::set(page_kind::PageKind::Display);
        browser::on_revoked(move || phase.set(Phase::Revoked));
        leptos::task::spawn_local(async move { phase.set(browser::open(id).await) });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (id, page_kind::get);
    view! {
        <Title text="livedash display"/>
        <div class="display-page">
            {move || match phase.get() {
                Phase::Opening => view! { <p class="display-message">"Opening the display…"</p> }.into_any(),
                Phase::Showing(brief) => view! { <DisplayScreen brief/> }.into_any(),
                Phase::Invalid(message) => view! { <p class="display-message" role="alert">{message}</p> }.into_any(),
                Phase::Revoked => {
                    view! { <p class="display-message" role="alert">"This display was revoked"</p> }.into_any()
                }
            }}
        </div>
    }
    .into_any()
}

/// The display at work: its connection, the rotation, the clock and the stale banner.
#[component]
fn DisplayScreen(brief: DisplayBrief) -> AnyView {
    let live = Live::provide();
    let started = now_ms();
    let now = RwSignal::new(started);
    let last_live = RwSignal::new(started);
    let shown = RwSignal::new(None::<DashboardView>);
    let dashboards = brief.dashboards.clone();
    let index = Memo::new(move |_| rotation_index(now.get() - started, brief.rotate_secs, dashboards.len()));
    let stale_secs = brief.stale_secs;
    // Live (or delivering) now: the data is as fresh as it gets.
    Effect::new(move |_| {
        let t = now.get();
        if live.status.with(|s| s.is_receiving()) {
            last_live.set(t);
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = index;
    #[cfg(feature = "hydrate")]
    {
        browser::theme(brief.theme);
        browser::tick(now);
        browser::keep_asking(brief.clone());
        let dashboards = brief.dashboards.clone();
        Effect::new(move |_| {
            let Some(&dashboard) = dashboards.get(index.get()) else { return };
            live.show_dashboard(dashboard);
            browser::load(dashboard, shown);
        });
    }
    let title = move || shown.with(|v| v.as_ref().map(|v| v.title.clone()).unwrap_or_default());
    let clock = move || crate::live::documents::clock_time(now.get() as i64);
    let banner = move || stale_words(now.get(), last_live.get(), stale_secs);
    let widgets = move || shown.with(|v| v.as_ref().map(|v| v.widgets.clone()).unwrap_or_default());
    view! {
        <div
            class="display-screen"
            data-display=brief.id
            data-status=move || live.status.get().slug()
            data-stale=move || banner().is_some().then_some("true")
        >
        <header class="display-header">
            <h1 class="display-title">{title}</h1>
            <span class="display-name">{brief.name.clone()}</span>
            <time class="display-clock">{clock}</time>
        </header>
        {move || banner().map(|words| view! { <div class="display-stale" role="alert">{words}</div> })}
        <main class="grid display-grid">
            <For each=widgets key=|w| w.id let:def>
                {
                    let id = def.id;
                    let thresholds = Memo::new(move |_| {
                        shown
                            .with(|v| v.as_ref().and_then(|v| v.widgets.iter().find(|w| w.id == id).map(|w| w.thresholds.clone())))
                            .unwrap_or_default()
                    });
                    view! { <div class="widget-slot">{widget_view(def, WidgetMode::Live, thresholds)}</div> }
                }
            </For>
        </main>
        </div>
    }
    .into_any()
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::{BRIEF_EVERY_MS, Phase};
    use crate::http::fetch_within;
    use crate::live::page_kind::SESSION_ENDED_EVENT;
    use leptos::prelude::*;
    use protocol::dashboard::DashboardView;
    use protocol::display::{DisplayBrief, DisplayClaim, DisplayTheme};
    use std::collections::BTreeMap;
    use std::time::Duration;
    use wasm_bindgen::{JsCast, closure::Closure};

    const ASK_WITHIN: Duration = Duration::from_secs(10);

    async fn sleep(ms: i32) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    /// Trades the link's secret for a session, or asks what the session shows; tries again (after
    /// 5 s, doubling to 30 s) while the server cannot be reached, for as long as it takes.
    pub async fn open(id: Option<i64>) -> Phase {
        let Some(id) = id else { return Phase::Invalid("This is not a display's address.".into()) };
        let hash = window().location().hash().unwrap_or_default();
        let secret = hash.trim_start_matches('#').to_owned();
        if !secret.is_empty() {
            // The secret leaves the address bar (and the history) before anything else happens.
            if let Ok(history) = window().history() {
                let _ =
                    history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&format!("/display/{id}")));
            }
        }
        let mut wait = 5_000;
        loop {
            let reply = if secret.is_empty() {
                fetch_within("GET", "/api/display/me", None, ASK_WITHIN).await
            } else {
                let claim = DisplayClaim { display: id, secret: secret.clone() };
                let body = serde_json::to_string(&claim).expect("a claim serialises");
                fetch_within("POST", "/api/display/session", Some(&body), ASK_WITHIN).await
            };
            match reply {
                Ok(reply) if reply.status == 200 => match serde_json::from_str::<DisplayBrief>(&reply.text) {
                    Ok(brief) if brief.id == id => return Phase::Showing(brief),
                    Ok(brief) => {
                        // The screen holds another display's session: go there.
                        let _ = window().location().replace(&format!("/display/{}", brief.id));
                        return Phase::Opening;
                    }
                    Err(e) => return Phase::Invalid(format!("Unexpected answer from the server: {e}")),
                },
                Ok(reply) if reply.status == 401 && !secret.is_empty() => {
                    return Phase::Invalid(
                        "This display link is not valid: the display was revoked, or the link is wrong.".into(),
                    );
                }
                Ok(reply) if reply.status == 401 || reply.status == 403 => {
                    return Phase::Invalid("This screen has no display session: open the display's link.".into());
                }
                Ok(reply) if reply.status == 429 => sleep(reply.retry_after.unwrap_or(30) as i32 * 1000).await,
                // Unreachable, or the server failed: a wall screen waits and tries again.
                _ => {
                    sleep(wait).await;
                    wait = (wait * 2).min(30_000);
                }
            }
        }
    }

    /// Calls `revoked` when the display's session ends while it runs (its socket closes with the
    /// session's end, or a request is told 401).
    pub fn on_revoked(revoked: impl Fn() + 'static) {
        let listener = Closure::<dyn Fn()>::new(revoked);
        let _ = window().add_event_listener_with_callback(SESSION_ENDED_EVENT, listener.as_ref().unchecked_ref());
        // The page lives as long as the listener: one per page load.
        listener.forget();
    }

    fn session_ended() {
        if let Ok(event) = web_sys::CustomEvent::new(SESSION_ENDED_EVENT) {
            let _ = window().dispatch_event(&event);
        }
    }

    /// Lights the page as the display says: its own choice, whatever the screen's system asks.
    pub fn theme(theme: DisplayTheme) {
        let Some(root) = document().document_element() else { return };
        let _ = match theme {
            DisplayTheme::System => root.remove_attribute("data-theme"),
            chosen => root.set_attribute("data-theme", chosen.as_str()),
        };
    }

    /// Moves `now` on every second (the clock, the rotation, the stale banner).
    pub fn tick(now: RwSignal<f64>) {
        let handle = set_interval_with_handle(
            move || {
                now.try_set(js_sys::Date::now());
            },
            Duration::from_secs(1),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }

    /// Loads dashboard `id` into `shown`, trying again in 5 s while it cannot. A dashboard whose
    /// widgets changed since the page first showed it reloads the page: the display's session then
    /// reads the new widgets' topics.
    pub fn load(id: i64, shown: RwSignal<Option<DashboardView>>) {
        thread_local! {
            static FIRST_SEEN: std::cell::RefCell<BTreeMap<i64, Vec<i64>>> = Default::default();
        }
        leptos::task::spawn_local(async move {
            loop {
                let reply = fetch_within("GET", &format!("/api/dashboards/{id}"), None, ASK_WITHIN).await;
                match reply {
                    Ok(reply) if reply.status == 200 => {
                        let Ok(view) = serde_json::from_str::<DashboardView>(&reply.text) else { return };
                        let widgets: Vec<i64> = view.widgets.iter().map(|w| w.id).collect();
                        let changed = FIRST_SEEN.with(|seen| {
                            let mut seen = seen.borrow_mut();
                            let first = seen.entry(id).or_insert_with(|| widgets.clone());
                            *first != widgets
                        });
                        if changed {
                            let _ = window().location().reload();
                            return;
                        }
                        shown.try_set(Some(view));
                        return;
                    }
                    Ok(reply) if reply.status == 401 => return session_ended(),
                    _ => sleep(5_000).await,
                }
            }
        });
    }

    /// Asks what the display shows every minute: a revoked display says so; another build, or other
    /// dashboards, rotation or theme, reload the page.
    pub fn keep_asking(brief: DisplayBrief) {
        let handle = set_interval_with_handle(
            move || {
                let brief = brief.clone();
                leptos::task::spawn_local(async move {
                    match fetch_within("GET", "/api/display/me", None, ASK_WITHIN).await {
                        Ok(reply)
                            if reply.status == 200
                                && serde_json::from_str::<DisplayBrief>(&reply.text).is_ok_and(|now| now != brief) =>
                        {
                            let _ = window().location().reload();
                        }
                        Ok(reply) if reply.status == 401 => session_ended(),
                        // Unreachable meanwhile: the banner says so; the next minute asks again.
                        _ => {}
                    }
                });
            },
            Duration::from_millis(u64::from(BRIEF_EVERY_MS)),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotation_shows_each_dashboard_for_its_time_in_turn() {
        assert_eq!(rotation_index(0.0, 30, 3), 0);
        assert_eq!(rotation_index(29_999.0, 30, 3), 0);
        assert_eq!(rotation_index(30_000.0, 30, 3), 1);
        assert_eq!(rotation_index(95_000.0, 30, 3), 0, "round again");
        assert_eq!(rotation_index(1e12, 30, 1), 0, "one dashboard never moves");
        assert_eq!(rotation_index(-5.0, 30, 2), 0, "a clock set back starts over");
    }

    #[test]
    fn the_screen_says_how_old_its_data_is_once_past_the_threshold() {
        assert_eq!(stale_words(60_000.0, 0.0, 60), None, "at the threshold: fresh still");
        assert_eq!(stale_words(61_000.0, 0.0, 60).unwrap(), "Data is 61 s old — reconnecting");
        assert_eq!(stale_words(180_000.0, 0.0, 60).unwrap(), "Data is 3 min old — reconnecting");
        assert_eq!(stale_words(3.0 * 3600e3, 0.0, 60).unwrap(), "Data is 3 h old — reconnecting");
        assert_eq!(stale_words(0.0, 5_000.0, 60), None, "a clock set back is not stale");
    }
}
