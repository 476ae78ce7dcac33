//! The header's notification centre (history, unread count, mark as read, clear, which levels
//! raise a toast) and the toasts themselves. Fed by one `events` topic; the unread state survives a
//! page refresh with the rest of the session.

use crate::dashboard::Preferences;
use crate::live::{notifications::Notification, notifications::Notifications, use_topic};
use crate::protocol::Level;
use leptos::prelude::*;

use crate::dashboard::NOTIFICATION_CENTER_FEED as WIDGET;

#[component]
pub fn NotificationCenter(
    /// The `events` topic to follow.
    topic: &'static str,
) -> AnyView {
    let feed = use_topic::<Notifications>(WIDGET, topic, crate::dashboard::WidgetMode::Live);
    let model = feed.data;
    // Toasts on screen, each with a number so one can be dismissed without the others.
    let toasts = RwSignal::new(Vec::<(u64, Notification)>::new());
    // Toasts being read (pointer on them, or focus in them): they stay until the reader leaves.
    let held = RwSignal::new(Vec::<u64>::new());
    let dismiss = move |id: u64| {
        toasts.update(|t| t.retain(|(i, _)| *i != id));
        held.update(|h| h.retain(|i| *i != id));
    };
    let hold = move |id: u64, on: bool| {
        held.update(|h| {
            h.retain(|i| *i != id);
            if on {
                h.push(id);
            }
        })
    };
    let open = RwSignal::new(false);
    let toast_levels = RwSignal::new(Preferences::default().toast_levels);
    // Set once the user changes a choice: the saved preferences loading late must not undo it.
    let touched = RwSignal::new(false);

    #[cfg(feature = "hydrate")]
    browser::attach(model, toasts, held, toast_levels, touched);

    let unread = move || model.with(|m| m.unread());
    let level_choice = move |level: Level| {
        let on = move || toast_levels.with(|l| l.contains(&level));
        let toggle = move |ev: leptos::ev::Event| {
            let checked = event_target_checked(&ev);
            touched.set(true);
            toast_levels.update(|l| {
                l.retain(|x| *x != level);
                if checked {
                    l.push(level);
                }
            });
            #[cfg(feature = "hydrate")]
            browser::save(toast_levels.get_untracked());
        };
        view! {
            <label class="toast-choice">
                <input type="checkbox" prop:checked=on on:change=toggle/>
                {format!("{}{}", level.as_str()[..1].to_uppercase(), &level.as_str()[1..])}
            </label>
        }
    };
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
                    <fieldset class="toast-preferences">
                        <legend>"Pop up for"</legend>
                        {Level::ALL.into_iter().map(level_choice).collect_view()}
                    </fieldset>
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
                                <div
                                    class=format!("toast level-{}", n.level.as_str())
                                    role="alert"
                                    on:mouseenter=move |_| hold(id, true)
                                    on:mouseleave=move |_| hold(id, false)
                                    on:focusin=move |_| hold(id, true)
                                    on:focusout=move |_| hold(id, false)
                                >
                                    <strong>{n.event.title.clone()}</strong>
                                    <span>{n.event.body.clone().unwrap_or_default()}</span>
                                    {scheduled(&n.event)}
                                    <button
                                        class="toast-close"
                                        type="button"
                                        aria-label="Dismiss"
                                        on:click=move |_| dismiss(id)
                                    >
                                        "×"
                                    </button>
                                </div>
                            }
                            .into_any()
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
    let when = scheduled(&n.event);
    view! {
        <li class=format!("notification level-{}", n.level.as_str()) class:unread=!n.read>
            <strong>{n.event.title}</strong>
            <span>{n.event.body.unwrap_or_default()}</span>
            {when}
        </li>
    }
}

/// A maintenance notice's planned time.
fn scheduled(event: &crate::protocol::Event) -> Option<AnyView> {
    let at = event.scheduled_at?;
    let text = format!("Scheduled for {}", crate::live::documents::clock_time(at));
    Some(view! { <span class="scheduled">{text}</span> }.into_any())
}

#[cfg(feature = "hydrate")]
mod browser {
    use crate::dashboard::Preferences;
    use crate::live::notifications::{Notification, Notifications};
    use crate::protocol::Level;
    use leptos::prelude::*;
    use std::{cell::Cell, rc::Rc, time::Duration};

    /// How long a toast stays unless dismissed or being read.
    const TOAST: Duration = Duration::from_secs(6);

    /// Takes a toast away after [`TOAST`], unless someone is reading it (pointer on it, focus in
    /// it): then it stays, and goes within [`TOAST`] after they leave. Nobody should lose a message
    /// mid-sentence, least of all someone who reads slowly (WCAG 2.2.1, timing adjustable).
    fn expire_later(toasts: RwSignal<Vec<(u64, Notification)>>, held: RwSignal<Vec<u64>>, id: u64) {
        set_timeout(
            move || {
                if held.try_with_untracked(|h| h.contains(&id)) == Some(true) {
                    return expire_later(toasts, held, id);
                }
                toasts.try_update(|t| t.retain(|(i, _)| *i != id));
            },
            TOAST,
        );
    }

    /// Loads the user's toast preferences, and turns the toasts the model raises into toasts on
    /// screen.
    pub fn attach(
        model: RwSignal<Notifications>,
        toasts: RwSignal<Vec<(u64, Notification)>>,
        held: RwSignal<Vec<u64>>,
        toast_levels: RwSignal<Vec<Level>>,
        touched: RwSignal<bool>,
    ) {
        leptos::task::spawn_local(async move {
            if let Ok((200, body)) = crate::http::call("GET", "/api/me/preferences", None).await
                && let Ok(preferences) = serde_json::from_str::<Preferences>(&body)
                && touched.try_get_untracked() == Some(false)
            {
                toast_levels.set(preferences.toast_levels);
            }
        });
        Effect::new(move |_| {
            let levels = toast_levels.get();
            model.update_untracked(|m| m.toast_levels = levels);
        });
        let next_id = Rc::new(Cell::new(0u64));
        Effect::new(move |_| {
            let fresh = model.with(|m| !m.fresh_toasts.is_empty());
            if !fresh {
                return;
            }
            let raised = model.try_update_untracked(|m| std::mem::take(&mut m.fresh_toasts)).unwrap_or_default();
            for toast in raised {
                let id = next_id.get();
                next_id.set(id + 1);
                toasts.update(|t| t.push((id, toast)));
                expire_later(toasts, held, id);
            }
        });
    }

    pub fn save(toast_levels: Vec<Level>) {
        leptos::task::spawn_local(async move {
            let preferences = Preferences { toast_levels };
            if let Err(e) = crate::http::send_json("PUT", "/api/me/preferences", Some(&preferences)).await {
                leptos::logging::warn!("livedash: saving preferences failed: {e}");
            }
        });
    }
}
