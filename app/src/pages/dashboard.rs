//! A stored dashboard (`/` opens the tenant's first, `/d/{id}` a given one): the header with the
//! connection and account, the tenant's dashboards as tabs, and the widgets on a responsive grid.
//! Admins can create dashboards and add, remove and reorder widgets; viewers only watch.

use super::live_shell::PageHeading;
use crate::dashboard::{DashboardSummary, DashboardView, WidgetDef, WidgetMode};
use crate::live::Live;
use crate::widgets::widget_view;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

mod editor;

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
    Failed(String),
}

#[component]
pub fn DashboardPage() -> AnyView {
    let live = Live::expect();
    let PageHeading(heading) = expect_context();
    let params = use_params_map();
    let wanted = Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())));
    let list = RwSignal::new(Vec::<DashboardSummary>::new());
    let loaded = RwSignal::new(Loaded::Loading);
    let editing = RwSignal::new(false);

    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let asked = wanted.get();
        loaded.set(Loaded::Loading);
        leptos::task::spawn_local(async move {
            let outcome = load(asked).await;
            // The user may have moved on (or left the page) while this was loading.
            if wanted.try_get_untracked() != Some(asked) {
                return;
            }
            if let Ok((_, Some(view))) = &outcome {
                live.show_dashboard(view.id);
                live.report(crate::protocol::ActivityAction::OpenDashboard, view.title.clone());
            }
            loaded.set(match outcome {
                Ok((dashboards, view)) => {
                    list.set(dashboards);
                    view.map_or(Loaded::NoDashboards, Loaded::Ready)
                }
                Err(e) => Loaded::Failed(e),
            });
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (live, wanted);

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
        view! {
            <div class="widget-slot" data-slot=id>
                <Show when=move || editing.get()>
                    <editor::WidgetEditBar widget=id loaded=loaded/>
                </Show>
                {widget_view(def.clone(), mode)}
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
        </Show>
        {move || match loaded.get() {
            Loaded::Loading => Some(view! { <p class="page-note">"Loading dashboard…"</p> }.into_any()),
            Loaded::NoDashboards => {
                Some(view! { <p class="page-note">"There are no dashboards yet. An admin can create one."</p> }.into_any())
            }
            Loaded::Failed(e) => Some(view! { <p class="page-note error" role="alert">{e}</p> }.into_any()),
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
async fn load(wanted: Option<i64>) -> Result<(Vec<DashboardSummary>, Option<DashboardView>), String> {
    let dashboards: Vec<DashboardSummary> = get_json("/api/dashboards").await?;
    let Some(id) = wanted.or_else(|| dashboards.first().map(|d| d.id)) else { return Ok((dashboards, None)) };
    let view = get_json(&format!("/api/dashboards/{id}")).await?;
    Ok((dashboards, Some(view)))
}

#[cfg(feature = "hydrate")]
async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, String> {
    match crate::http::call("GET", url, None).await? {
        (200, body) => serde_json::from_str(&body).map_err(|e| format!("unexpected answer from {url}: {e}")),
        (401, _) => {
            crate::http::go_to(crate::pages::LOGIN_PATH);
            Err("Your session ended; sign in again.".into())
        }
        (404, _) => Err("This dashboard does not exist (or belongs to another tenant).".into()),
        (status, body) => Err(format!("The server answered {status}: {body}")),
    }
}
