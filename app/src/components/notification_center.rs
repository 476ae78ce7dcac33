//! The header's notification centre (history, unread count, mark as read, clear) and the toasts that
//! warnings and errors raise. Fed by one `events` topic.

use crate::live::notifications::{Notification, Notifications};
use crate::protocol::Level;
use leptos::prelude::*;

#[component]
pub fn NotificationCenter(
    /// The `events` topic to follow.
    topic: &'static str,
) -> AnyView {
    let model = RwSignal::new(Notifications::default());
    // Toasts on screen, each with a number so one can be dismissed without the others.
    let toasts = RwSignal::new(Vec::<(u64, Notification)>::new());
    let open = RwSignal::new(false);

    #[cfg(feature = "hydrate")]
    browser::attach(topic, model, toasts);
    #[cfg(not(feature = "hydrate"))]
    let _ = topic;

    let unread = move || model.with(|m| m.unread());
    view! {
        <div class="notifications">
            <button
                class="button-quiet bell"
                type="button"
                aria-expanded=move || open.get().to_string()
                aria-label=move || format!("Notifications, {} unread", unread())
                on:click=move |_| open.update(|o| *o = !*o)
            >
                "Notifications"
                <Show when=move || { unread() > 0 }>
                    <span class="unread-count">{unread}</span>
                </Show>
            </button>
            <Show when=move || open.get()>
                <div class="notification-panel" role="dialog" aria-label="Notifications">
                    <div class="notification-actions">
                        <button class="button-quiet" type="button" on:click=move |_| model.update(|m| m.mark_all_read())>
                            "Mark all as read"
                        </button>
                        <button class="button-quiet" type="button" on:click=move |_| model.update(|m| m.clear())>
                            "Clear"
                        </button>
                    </div>
                    <ul class="notification-list">
                        {move || {
                            model.with(|m| m.newest_first().map(|n| view! { <NotificationItem n=n.clone()/> }).collect_view())
                        }}
                    </ul>
                </div>
            </Show>
            <div class="toasts" aria-live="assertive">
                {move || {
                    toasts
                        .get()
                        .into_iter()
                        .map(|(id, n)| {
                            view! {
                                <div class=format!("toast level-{}", level_name(n.level)) role="alert">
                                    <strong>{n.event.title.clone()}</strong>
                                    <span>{n.event.body.clone().unwrap_or_default()}</span>
                                    <button
                                        class="toast-close"
                                        type="button"
                                        aria-label="Dismiss"
                                        on:click=move |_| toasts.update(|t| t.retain(|(i, _)| *i != id))
                                    >
                                        "×"
                                    </button>
                                </div>
                            }
                        })
                        .collect_view()
                }}
            </div>
        </div>
    }
    .into_any()
}

#[component]
fn NotificationItem(n: Notification) -> impl IntoView {
    view! {
        <li class=format!("notification level-{}", level_name(n.level)) class:unread=!n.read>
            <strong>{n.event.title}</strong>
            <span>{n.event.body.unwrap_or_default()}</span>
        </li>
    }
}

pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Info => "info",
        Level::Success => "success",
        Level::Warning => "warning",
        Level::Error => "error",
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use crate::live::{
        Live,
        notifications::{Notification, Notifications},
        session::Delivery,
    };
    use leptos::prelude::*;
    use std::{cell::Cell, rc::Rc, time::Duration};

    /// How long a toast stays unless dismissed.
    const TOAST: Duration = Duration::from_secs(6);
    const WIDGET: &str = "notifications";

    pub fn attach(topic: &'static str, model: RwSignal<Notifications>, toasts: RwSignal<Vec<(u64, Notification)>>) {
        let next_id = Rc::new(Cell::new(0u64));
        let handler = Rc::new(move |delivery: &Delivery| match delivery {
            Delivery::Snapshot { series, .. } => model.update(|m| m.replace(series)),
            Delivery::Update { series, .. } => {
                for toast in model.try_update(|m| m.add(series)).unwrap_or_default() {
                    let id = next_id.get();
                    next_id.set(id + 1);
                    toasts.update(|t| t.push((id, toast)));
                    set_timeout(move || toasts.update(|t| t.retain(|(i, _)| *i != id)), TOAST);
                }
            }
            Delivery::Gap => {}
            Delivery::Error { code, message } => leptos::logging::warn!("livedash: notifications: {code:?}: {message}"),
        });
        Live::expect().subscribe(WIDGET, topic, handler);
    }
}
