//! The header's notification centre (history, unread count, mark as read, clear, which levels
//! raise a toast) and the toasts themselves. Fed by one `events` topic, and by the page's own
//! connection events ("Connection lost", "Connection restored after 12 s"); the unread state survives a
//! page refresh with the rest of the session. Marking read, clearing and the toast choices made in
//! one tab apply in the user's other tabs of the browser too (a `BroadcastChannel` per user).

use crate::live::notifications::{CentreChange, Notification, Notifications};
use crate::live::use_topic;
use leptos::prelude::*;
use protocol::Level;
use protocol::dashboard::Preferences;

use protocol::dashboard::NOTIFICATION_CENTER_FEED as WIDGET;

#[component]
pub fn NotificationCenter(
    /// The `events` topic to follow.
    topic: &'static str,
) -> AnyView {
    let feed = use_topic::<Notifications>(WIDGET, topic, protocol::dashboard::WidgetMode::Live);
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
    // The page's own connection, lost and restored, as local entries (toasted like the others).
    #[cfg(feature = "hydrate")]
    crate::live::Live::expect().on_connection_event(move |event| {
        let now = js_sys::Date::now() as i64;
        model.try_update(|m| {
            if let Some(toast) = m.connection(event, now) {
                m.fresh_toasts.push(toast);
            }
        });
    });
    #[cfg(feature = "hydrate")]
    let tabs = browser::OtherTabs::open(crate::live::Live::expect().identity, model, toast_levels, touched);
    let tell = move |change: CentreChange| {
        #[cfg(feature = "hydrate")]
        tabs.tell(&change);
        #[cfg(not(feature = "hydrate"))]
        let _ = change;
    };

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
            tell(CentreChange::ToastLevels { levels: toast_levels.get_untracked() });
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
                // Where the centre's topic stands, as on every widget: empty until its snapshot.
                data-offset=move || feed.state.offset.get().map(|o| o.to_string()).unwrap_or_default()
                on:click=move |_| open.update(|o| *o = !*o)
            >
                // Its name is its text, "Notifications 3 unread": what it shows ("Notifications 3"),
                // then what only a screen reader needs to hear.
                "Notifications "
                <Show
                    when=move || { unread() > 0 }
                    fallback=|| view! { <span class="visually-hidden">"0"</span> }
                >
                    <span class="unread-count">{unread}</span>
                </Show>
                <span class="visually-hidden">" unread"</span>
            </button>
            <Show when=move || open.get()>
                <div class="notification-panel" role="dialog" aria-label="Notifications">
                    <div class="notification-actions">
                        <button class="button-quiet" type="button" on:click=move |_| {
                            if let Some(change) = model.try_update(|m| m.mark_all_read()) {
                                tell(change);
                            }
                        }>
                            "Mark all as read"
                        </button>
                        <button class="button-quiet" type="button" on:click=move |_| {
                            if let Some(change) = model.try_update(|m| m.clear()) {
                                tell(change);
                            }
                        }>
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
fn scheduled(event: &protocol::Event) -> Option<AnyView> {
    let at = event.scheduled_at?;
    let text = format!("Scheduled for {}", crate::live::documents::clock_time(at));
    Some(view! { <span class="scheduled">{text}</span> }.into_any())
}

#[cfg(feature = "hydrate")]
mod browser {
    use crate::live::Identity;
    use crate::live::notifications::{CentreChange, Notification, Notifications};
    use leptos::prelude::*;
    use protocol::Level;
    use protocol::dashboard::Preferences;
    use std::{cell::Cell, rc::Rc, time::Duration};
    use wasm_bindgen::{JsCast, closure::Closure};

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

    /// The user's other tabs of this browser, told what this one's centre did (and telling it
    /// theirs). Opened once the page knows who is signed in: the channel is per user, so another
    /// user signed in later in the browser hears nothing of this one.
    #[derive(Clone, Copy)]
    pub struct OtherTabs {
        channel: StoredValue<Option<Channel>, LocalStorage>,
    }

    struct Channel {
        port: web_sys::BroadcastChannel,
        _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    }

    impl OtherTabs {
        pub fn open(
            identity: RwSignal<Identity>,
            model: RwSignal<Notifications>,
            toast_levels: RwSignal<Vec<Level>>,
            touched: RwSignal<bool>,
        ) -> Self {
            let channel = StoredValue::new_local(None::<Channel>);
            Effect::new(move |_| {
                let Identity::Known(account) = identity.get() else { return };
                if channel.with_value(Option::is_some) {
                    return;
                }
                let Ok(port) = web_sys::BroadcastChannel::new(&format!("livedash-notifications:{}", account.key()))
                else {
                    return; // no BroadcastChannel here: each tab keeps its own state
                };
                let on_message =
                    Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
                        let Some(change) = event.data().as_string().and_then(|t| serde_json::from_str(&t).ok()) else {
                            return;
                        };
                        match change {
                            CentreChange::ToastLevels { levels } => {
                                // Chosen by the user since the page loaded: the saved ones must not undo it.
                                touched.set(true);
                                toast_levels.set(levels);
                            }
                            change => model.update(|m| m.apply_change(&change)),
                        }
                    });
                port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
                channel.set_value(Some(Channel { port, _on_message: on_message }));
            });
            // Closed before the callback is dropped, so the browser never calls a freed closure.
            on_cleanup(move || {
                if let Some(Some(Channel { port, .. })) = channel.try_update_value(Option::take) {
                    port.set_onmessage(None);
                    port.close();
                }
            });
            Self { channel }
        }

        pub fn tell(&self, change: &CentreChange) {
            let Ok(text) = serde_json::to_string(change) else { return };
            self.channel.with_value(|channel| {
                if let Some(channel) = channel {
                    let _ = channel.port.post_message(&text.into());
                }
            });
        }
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
