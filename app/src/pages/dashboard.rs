//! A stored dashboard (`/` opens the tenant's first, `/d/{id}` a given one): the header with the
//! connection and account, the tenant's dashboards as tabs, and the widgets on a responsive grid.
//! Admins can create dashboards and add, remove and reorder widgets; viewers only watch.
//!
//! The page follows the tenant's dashboard edits (`dashboards/edits`): when an announced outline
//! differs from what it shows, it loads the dashboard again and swaps it in place. Widgets are
//! keyed by id, so those that stay keep running; a removed one unmounts (and unsubscribes), an
//! added one mounts and starts live.

use super::live_shell::PageHeading;
use crate::live::{Live, documents::Documents, use_topic};
use crate::widgets::widget_view;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use protocol::dashboard::{DASHBOARD_EDITS_FEED, DashboardSummary, DashboardView, WidgetDef, WidgetMode};

mod alert_history;
mod displays_editor;
mod editor;
mod notify_editor;
mod thresholds_editor;
mod topic_rules_editor;
mod widget_setting;

/// The topics the built-in demo feed publishes to.
pub const DEMO_ORDERS_TOPIC: &str = "sales/orders";
pub const DEMO_KPI_TOPIC: &str = "kpi/overview";

/// Where the page stands with loading its dashboard.
// The server only ever renders `Loading`; the browser fills the rest in.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq)]
enum Loaded {
    Loading,
    Ready(DashboardView),
    /// The tenant has no dashboards yet.
    NoDashboards,
    Failed(LoadError),
}

/// Why a dashboard did not load.
#[derive(Debug, Clone, PartialEq)]
struct LoadError {
    message: String,
    /// The server could not be reached, or failed: the page tries again by itself.
    transient: bool,
}

#[cfg(feature = "hydrate")]
impl LoadError {
    fn lasting(message: impl Into<String>) -> Self {
        Self { message: message.into(), transient: false }
    }

    fn transient(message: impl Into<String>) -> Self {
        Self { message: message.into(), transient: true }
    }
}

/// How soon a dashboard that failed to load for a passing reason is asked for again (sooner when
/// the live connection comes back).
#[cfg(feature = "hydrate")]
const RELOAD_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

#[component]
pub fn DashboardPage() -> AnyView {
    let live = Live::expect();
    let PageHeading(heading) = expect_context();
    let params = use_params_map();
    let wanted = Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())));
    let list = RwSignal::new(Vec::<DashboardSummary>::new());
    let loaded = RwSignal::new(Loaded::Loading);
    let editing = RwSignal::new(false);

    let edits = use_topic::<Documents>(DASHBOARD_EDITS_FEED, protocol::topics::DASHBOARD_EDITS_TOPIC, WidgetMode::Live);
    // Counts loads: of several in flight, only the newest is shown.
    let loads = StoredValue::new(0u64);
    // Ticks when a dashboard that failed to load for a passing reason is due to be asked for again.
    let retry_due = RwSignal::new(0u64);

    // Loads the dashboard the URL names. `in_place` keeps the page as it is meanwhile (an edit was
    // announced), and keeps a dashboard shown if that load fails: the next announcement tries again.
    #[cfg(feature = "hydrate")]
    let fetch = move |asked: Option<i64>, in_place: bool| {
        let this = loads.get_value() + 1;
        loads.set_value(this);
        if !in_place {
            loaded.set(Loaded::Loading);
        }
        leptos::task::spawn_local(async move {
            let outcome = load(asked).await;
            // The user may have moved on (or left the page), or a newer load started.
            if wanted.try_get_untracked() != Some(asked) || loads.try_get_value() != Some(this) {
                return;
            }
            if in_place && outcome.is_err() && loaded.with_untracked(|l| matches!(l, Loaded::Ready(_))) {
                return;
            }
            if let Ok((_, Some(view))) = &outcome {
                let shown_before = loaded.with_untracked(|l| matches!(l, Loaded::Ready(v) if v.id == view.id));
                if !shown_before {
                    live.show_dashboard(view.id);
                    live.report(protocol::ActivityAction::OpenDashboard, view.title.clone());
                }
            }
            match outcome {
                Ok((dashboards, view)) => {
                    list.set(dashboards);
                    loaded.set(view.map_or(Loaded::NoDashboards, Loaded::Ready));
                }
                Err(e) => {
                    if e.transient {
                        // An outage, say: no widget can show anything until the dashboard loads.
                        set_timeout(
                            move || {
                                retry_due.try_update(|n| *n += 1);
                            },
                            RELOAD_AFTER,
                        );
                    }
                    loaded.set(Loaded::Failed(e))
                }
            }
        });
    };
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| fetch(wanted.get(), false));
    // A load that failed for a passing reason is made again a little later, or as soon as the
    // connection is back.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        retry_due.track();
        let receiving = live.status.with(|s| s.is_receiving());
        let failed = loaded.with_untracked(|l| matches!(l, Loaded::Failed(e) if e.transient));
        if receiving && failed {
            fetch(wanted.get_untracked(), false);
        }
    });
    // Only announcements trigger this (what the page shows is read untracked): a page whose load
    // still differs from the outline waits for the next edit rather than loading in a loop.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let outlines = edits.data.with(|docs| protocol::dashboard::DashboardOutline::all_in(docs.iter()));
        let stale = loaded.with_untracked(|l| {
            let shown = match l {
                Loaded::Ready(view) => Some(view),
                _ => None,
            };
            list.with_untracked(|list| protocol::dashboard::Stale::of(&outlines, list, shown))
        });
        if stale.any() {
            fetch(wanted.get_untracked(), true);
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (live, wanted, edits, loads, retry_due);

    let view_of = move || match loaded.get() {
        Loaded::Ready(view) => Some(view),
        _ => None,
    };
    let can_edit = move || view_of().is_some_and(|v| v.can_edit);
    let title = move || view_of().map_or_else(|| "Dashboard".to_owned(), |v| v.title);
    let current = move || view_of().map(|v| v.id);
    Effect::new(move |_| heading.set(title()));

    // Widgets with the mode each starts in, in display order; keyed by id so a reorder moves the
    // live widgets instead of re-creating them.
    let widgets = move || {
        view_of().map(|v| v.widgets.iter().map(|w| (w.clone(), v.mode_of(w))).collect::<Vec<_>>()).unwrap_or_default()
    };
    let slot = move |(def, mode): (WidgetDef, WidgetMode)| {
        let id = def.id;
        // As saved now: a threshold the editor changes applies at once, without re-creating the
        // widget.
        let thresholds = Memo::new(move |_| match loaded.get() {
            Loaded::Ready(v) => v.widgets.iter().find(|w| w.id == id).map(|w| w.thresholds.clone()).unwrap_or_default(),
            _ => Vec::new(),
        });
        view! {
            <div class="widget-slot" data-slot=id>
                <Show when=move || editing.get()>
                    <editor::WidgetEditBar widget=id loaded=loaded/>
                    {(def.kind.topic_kind() == "collection").then(|| view! { <notify_editor::NotifyEditor widget=id loaded=loaded/> })}
                    {def.kind.has_thresholds().then(|| view! { <thresholds_editor::ThresholdsEditor widget=id kind=def.kind loaded=loaded/> })}
                </Show>
                {widget_view(def.clone(), mode, thresholds)}
                {move || {
                    let dashboard = current().filter(|_| thresholds.with(|t| !t.is_empty()));
                    dashboard.map(|dashboard| view! { <alert_history::AlertHistory dashboard widget=id/> })
                }}
            </div>
        }
    };

    view! {
        <Title text=move || format!("{} — livedash", title())/>
        <nav class="dashboard-tabs" aria-label="Dashboards">
            {move || {
                list.get()
                    .into_iter()
                    .map(|d| {
                        let here = current() == Some(d.id);
                        view! {
                            <a href=format!("/d/{}", d.id) class="tab" aria-current=here.then_some("page")>
                                {d.title}
                            </a>
                        }
                    })
                    .collect_view()
            }}
            <span class="tabs-spacer"></span>
            <Show when=can_edit>
                <editor::NewDashboardForm/>
                <button
                    class="button-quiet"
                    type="button"
                    aria-pressed=move || editing.get().to_string()
                    on:click=move |_| editing.update(|e| *e = !*e)
                >
                    {move || if editing.get() { "Done editing" } else { "Edit dashboard" }}
                </button>
            </Show>
        </nav>
        <Show when=move || editing.get() && can_edit()>
            <editor::AddWidgetForm loaded=loaded/>
            <topic_rules_editor::TopicRulesEditor/>
            <displays_editor::DisplaysEditor dashboards=Signal::derive(move || list.get()) current=Signal::derive(current)/>
        </Show>
        {move || match loaded.get() {
            Loaded::Loading => Some(view! { <p class="page-note">"Loading dashboard…"</p> }.into_any()),
            Loaded::NoDashboards => {
                Some(view! { <p class="page-note">"There are no dashboards yet. An admin can create one."</p> }.into_any())
            }
            Loaded::Failed(e) => {
                let retrying = e.transient.then_some(" Trying again…");
                Some(view! { <p class="page-note error" role="alert">{e.message}{retrying}</p> }.into_any())
            }
            Loaded::Ready(_) => None,
        }}
        <main class="grid">
            <For each=widgets key=|(def, _)| def.id children=slot/>
        </main>
    }
    // A page's view type nests every element and component in it; erasing it here keeps the types
    // the compiler must lay out shallow (it otherwise exceeds the query depth limit).
    .into_any()
}

/// The tenant's dashboards, and the one to show: `wanted`, or the first.
#[cfg(feature = "hydrate")]
async fn load(wanted: Option<i64>) -> Result<(Vec<DashboardSummary>, Option<DashboardView>), LoadError> {
    let dashboards: Vec<DashboardSummary> = get_json("/api/dashboards").await?;
    let Some(id) = wanted.or_else(|| dashboards.first().map(|d| d.id)) else { return Ok((dashboards, None)) };
    let view = get_json(&format!("/api/dashboards/{id}")).await?;
    Ok((dashboards, Some(view)))
}

#[cfg(feature = "hydrate")]
async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, LoadError> {
    let answer = crate::http::fetch_within("GET", url, None, std::time::Duration::from_secs(10)).await;
    let reply = answer.map_err(|_| LoadError::transient("The server cannot be reached."))?;
    match (reply.status, reply.text) {
        (200, body) => {
            serde_json::from_str(&body).map_err(|e| LoadError::lasting(format!("unexpected answer from {url}: {e}")))
        }
        (401, _) => {
            crate::http::go_to(crate::routes::LOGIN_PATH);
            Err(LoadError::lasting("Your session ended; sign in again."))
        }
        (404, _) => Err(LoadError::lasting("This dashboard does not exist (or belongs to another tenant).")),
        (status, body) => Err(LoadError::transient(format!("The server answered {status}: {body}"))),
    }
}
