//! Dashboard editing for admins: a new dashboard, adding a widget, and moving or removing one. The
//! server checks the role again on every call; these controls are only shown to admins.

use super::Loaded;
use leptos::prelude::*;
use protocol::dashboard::{WidgetKind, WidgetMode};

/// The widgets' ids after moving `widget` by `step` places (`None` when it cannot move).
pub fn moved(ids: &[i64], widget: i64, step: isize) -> Option<Vec<i64>> {
    let from = ids.iter().position(|&id| id == widget)?;
    let to = from.checked_add_signed(step).filter(|&to| to < ids.len())?;
    let mut ids = ids.to_vec();
    ids.swap(from, to);
    Some(ids)
}

#[component]
pub fn WidgetEditBar(widget: i64, loaded: RwSignal<Loaded>) -> AnyView {
    let error = RwSignal::new(None::<String>);
    let title = move || match loaded.get() {
        Loaded::Ready(v) => v.widgets.iter().find(|w| w.id == widget).map(|w| w.title.clone()).unwrap_or_default(),
        _ => String::new(),
    };
    let shift = move |step: isize| {
        let Loaded::Ready(view) = loaded.get_untracked() else { return };
        let ids: Vec<i64> = view.widgets.iter().map(|w| w.id).collect();
        let Some(order) = moved(&ids, widget, step) else { return };
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let body = protocol::dashboard::WidgetOrder { widget_ids: order.clone() };
            match crate::http::send_json("PUT", &format!("/api/dashboards/{}/order", view.id), Some(&body)).await {
                Ok(_) => loaded.update(|l| match l {
                    // Only if the same dashboard is still shown.
                    Loaded::Ready(v) if v.id == view.id => {
                        v.widgets.sort_by_key(|w| order.iter().position(|id| *id == w.id))
                    }
                    _ => {}
                }),
                Err(e) => error.set(Some(e)),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (order, error);
    };
    let remove = move |_| {
        let Loaded::Ready(view) = loaded.get_untracked() else { return };
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let url = format!("/api/dashboards/{}/widgets/{widget}", view.id);
            match crate::http::send_json("DELETE", &url, None::<&()>).await {
                Ok(_) => loaded.update(|l| match l {
                    Loaded::Ready(v) if v.id == view.id => v.widgets.retain(|w| w.id != widget),
                    _ => {}
                }),
                Err(e) => error.set(Some(e)),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = view;
    };
    view! {
        <div class="edit-bar">
            <button class="button-quiet" type="button" aria-label=move || format!("Move {} earlier", title()) on:click=move |_| shift(-1)>
                "← Earlier"
            </button>
            <button class="button-quiet" type="button" aria-label=move || format!("Move {} later", title()) on:click=move |_| shift(1)>
                "Later →"
            </button>
            <button class="button-quiet danger" type="button" aria-label=move || format!("Remove {}", title()) on:click=remove>
                "Remove"
            </button>
            {move || error.get().map(|e| view! { <span class="form-error" role="alert">{e}</span> })}
        </div>
    }
    .into_any()
}

#[component]
pub fn AddWidgetForm(loaded: RwSignal<Loaded>) -> AnyView {
    let title = RwSignal::new(String::new());
    let kind = RwSignal::new(WidgetKind::LineChart);
    let topic = RwSignal::new(String::new());
    let mode = RwSignal::new(WidgetMode::Live);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Loaded::Ready(view) = loaded.get_untracked() else { return };
        let new = protocol::dashboard::NewWidget {
            title: title.get_untracked(),
            kind: kind.get_untracked(),
            topic: topic.get_untracked(),
            default_mode: mode.get_untracked(),
            notify: None,
            thresholds: vec![],
        };
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::http::send_json("POST", &format!("/api/dashboards/{}/widgets", view.id), Some(&new)).await {
                Ok(body) => match serde_json::from_str::<protocol::dashboard::WidgetDef>(&body) {
                    Ok(widget) => {
                        error.set(None);
                        title.set(String::new());
                        topic.set(String::new());
                        loaded.update(|l| match l {
                            // The announcement of this edit may have reloaded the dashboard first.
                            Loaded::Ready(v) if v.id == view.id && v.widgets.iter().all(|w| w.id != widget.id) => {
                                v.widgets.push(widget)
                            }
                            _ => {}
                        });
                    }
                    Err(e) => error.set(Some(e.to_string())),
                },
                Err(e) => error.set(Some(e)),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (view, new);
    };
    view! {
        <form class="add-widget" on:submit=submit aria-label="Add a widget">
            <label>
                "Title"
                <input type="text" required maxlength="80" prop:value=title on:input=move |ev| title.set(event_target_value(&ev))/>
            </label>
            <label>
                "Kind"
                <select on:change=move |ev| {
                    if let Some(k) = WidgetKind::parse(&event_target_value(&ev)) {
                        kind.set(k);
                    }
                }>
                    {WidgetKind::ALL
                        .into_iter()
                        .map(|k| view! { <option value=k.slug() selected=move || kind.get() == k>{k.label()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Topic"
                <input
                    type="text"
                    required
                    placeholder=move || format!("a {} topic, e.g. sales/orders", kind.get().topic_kind())
                    prop:value=topic
                    on:input=move |ev| topic.set(event_target_value(&ev))
                />
            </label>
            <label>
                "Default mode"
                <select on:change=move |ev| {
                    if let Some(m) = WidgetMode::parse(&event_target_value(&ev)) {
                        mode.set(m);
                    }
                }>
                    {WidgetMode::ALL
                        .into_iter()
                        .map(|m| view! { <option value=m.slug() selected=move || mode.get() == m>{m.to_string()}</option> })
                        .collect_view()}
                </select>
            </label>
            <button type="submit">"Add widget"</button>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </form>
    }
    .into_any()
}

#[component]
pub fn NewDashboardForm() -> AnyView {
    let title = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    #[cfg(feature = "hydrate")]
    let navigate = leptos_router::hooks::use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let new = protocol::dashboard::NewDashboard { title: title.get_untracked() };
        #[cfg(feature = "hydrate")]
        {
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                match crate::http::send_json("POST", "/api/dashboards", Some(&new)).await {
                    Ok(body) => match serde_json::from_str::<protocol::dashboard::DashboardSummary>(&body) {
                        Ok(created) => {
                            title.set(String::new());
                            navigate(&format!("/d/{}", created.id), Default::default());
                        }
                        Err(e) => error.set(Some(e.to_string())),
                    },
                    Err(e) => error.set(Some(e)),
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (new, error);
    };
    view! {
        <form class="new-dashboard" on:submit=submit aria-label="New dashboard">
            <input
                type="text"
                required
                maxlength="80"
                placeholder="New dashboard title"
                aria-label="New dashboard title"
                prop:value=title
                on:input=move |ev| title.set(event_target_value(&ev))
            />
            <button class="button-quiet" type="submit">"Create"</button>
            {move || error.get().map(|e| view! { <span class="form-error" role="alert">{e}</span> })}
        </form>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::moved;

    #[test]
    fn moving_swaps_with_the_neighbour_and_stops_at_the_ends() {
        assert_eq!(moved(&[1, 2, 3], 2, -1), Some(vec![2, 1, 3]));
        assert_eq!(moved(&[1, 2, 3], 2, 1), Some(vec![1, 3, 2]));
        assert_eq!(moved(&[1, 2, 3], 1, -1), None);
        assert_eq!(moved(&[1, 2, 3], 3, 1), None);
        assert_eq!(moved(&[1, 2, 3], 9, 1), None);
    }
}
