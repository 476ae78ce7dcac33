//! Wall displays, for admins while editing: make one for this dashboard (or a rotation of
//! several), see its link once, and list, rename and revoke the tenant's displays with when and
//! from where each screen was last seen.

use leptos::prelude::*;
use protocol::dashboard::DashboardSummary;
use protocol::display::{DisplayInfo, DisplayTheme, NewDisplay};

/// "seen 3 min ago from 10.0.0.7", "never seen", "revoked".
pub fn seen_words(display: &DisplayInfo, now_secs: i64) -> String {
    if display.revoked_at.is_some() {
        return "revoked".into();
    }
    match (display.last_seen_at, &display.last_seen_addr) {
        (Some(at), addr) => {
            let ago = (now_secs - at).max(0);
            let when = match ago {
                s if s < 60 => "just now".to_owned(),
                s if s < 3600 => format!("{} min ago", s / 60),
                s if s < 48 * 3600 => format!("{} h ago", s / 3600),
                s => format!("{} days ago", s / 86_400),
            };
            match addr {
                Some(addr) => format!("seen {when} from {addr}"),
                None => format!("seen {when}"),
            }
        }
        (None, _) => "never seen".into(),
    }
}

#[component]
pub fn DisplaysEditor(
    /// The tenant's dashboards (to rotate through) and the one shown (picked first).
    dashboards: Signal<Vec<DashboardSummary>>,
    current: Signal<Option<i64>>,
) -> AnyView {
    let displays = RwSignal::new(Vec::<DisplayInfo>::new());
    let message = RwSignal::new(String::new());
    let link = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let picked = RwSignal::new(Vec::<i64>::new());
    let rotate = RwSignal::new("30".to_owned());
    let theme = RwSignal::new(DisplayTheme::Dark);
    // The dashboard shown is picked to begin with.
    Effect::new(move |_| {
        if let Some(id) = current.get()
            && picked.with_untracked(Vec::is_empty)
        {
            picked.set(vec![id]);
        }
    });
    let reload = move || {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::http::fetch("GET", "/api/admin/displays", None).await {
                Ok(reply) if reply.status == 200 => {
                    if let Ok(list) = serde_json::from_str(&reply.text) {
                        displays.set(list);
                    }
                }
                Ok(reply) => message.set(format!("The displays could not be read ({}).", reply.status)),
                Err(e) => message.set(e),
            }
        });
    };
    reload();
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(rotate_secs) = rotate.get_untracked().trim().parse::<u32>() else {
            return message.set("Seconds per dashboard: a whole number".into());
        };
        let new = NewDisplay {
            name: name.get_untracked(),
            dashboards: picked.get_untracked(),
            rotate_secs,
            theme: theme.get_untracked(),
        };
        if let Err((_, why)) = new.check() {
            return message.set(why);
        }
        message.set("Creating…".into());
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::http::send_json("POST", "/api/admin/displays", Some(&new)).await {
                Ok(body) => match serde_json::from_str::<protocol::display::CreatedDisplay>(&body) {
                    Ok(created) => {
                        let origin = window().location().origin().unwrap_or_default();
                        link.set(Some(format!("{origin}{}", created.link)));
                        message
                            .set(format!("Created {:?}. Its link is shown this once:", created.display.settings.name));
                        name.set(String::new());
                        reload();
                    }
                    Err(e) => message.set(format!("Unexpected answer: {e}")),
                },
                Err(e) => message.set(format!("Not created: {e}")),
            }
        });
    };
    let revoke = move |id: i64| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::http::send_json("DELETE", &format!("/api/admin/displays/{id}"), None::<&()>).await {
                Ok(_) => reload(),
                Err(e) => message.set(format!("Not revoked: {e}")),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = id;
    };
    let rename = move |id: i64, new_name: String| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let edit = protocol::display::DisplayEdit { name: Some(new_name), ..Default::default() };
            match crate::http::send_json("PATCH", &format!("/api/admin/displays/{id}"), Some(&edit)).await {
                Ok(_) => reload(),
                Err(e) => message.set(format!("Not renamed: {e}")),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (id, new_name);
    };
    let now_secs = move || {
        #[cfg(feature = "hydrate")]
        return (js_sys::Date::now() / 1000.0) as i64;
        #[cfg(not(feature = "hydrate"))]
        0
    };
    let row = move |display: DisplayInfo| {
        let id = display.id;
        let typed = RwSignal::new(display.settings.name.clone());
        let revoked = display.revoked_at.is_some();
        let seen = seen_words(&display, now_secs());
        let shows = display.settings.dashboards.len();
        view! {
            <li class="display-row" data-display=id class:revoked=revoked>
                <label>
                    <span class="visually-hidden">{format!("Name of display {id}")}</span>
                    <input type="text" prop:value=move || typed.get() on:input=move |ev| typed.set(event_target_value(&ev)) disabled=revoked/>
                </label>
                <span class="display-seen">{seen}</span>
                <span class="display-shows">{format!("{shows} dashboard(s)")}</span>
                <Show when=move || !revoked>
                    <button class="button-quiet" type="button" on:click=move |_| rename(id, typed.get_untracked())>
                        "Rename"
                    </button>
                    <button class="button-quiet danger" type="button" on:click=move |_| revoke(id)>
                        {format!("Revoke {}", display.settings.name)}
                    </button>
                </Show>
            </li>
        }
    };
    view! {
        <details class="displays-editor">
            <summary>{move || format!("Wall displays ({})", displays.with(|d| d.iter().filter(|d| d.revoked_at.is_none()).count()))}</summary>
            <form on:submit=create aria-label="New wall display">
                <label>
                    "Name"
                    <input type="text" placeholder="e.g. Ops room, left wall" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                </label>
                <fieldset class="display-dashboards">
                    <legend>"Shows, in turn"</legend>
                    {move || {
                        dashboards
                            .get()
                            .into_iter()
                            .map(|d| {
                                let id = d.id;
                                view! {
                                    <label>
                                        <input
                                            type="checkbox"
                                            prop:checked=move || picked.with(|p| p.contains(&id))
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                picked.update(|p| {
                                                    p.retain(|x| *x != id);
                                                    if on {
                                                        p.push(id);
                                                    }
                                                });
                                            }
                                        />
                                        {d.title}
                                    </label>
                                }
                            })
                            .collect_view()
                    }}
                </fieldset>
                <label>
                    "Seconds per dashboard"
                    <input type="text" inputmode="numeric" prop:value=move || rotate.get() on:input=move |ev| rotate.set(event_target_value(&ev))/>
                </label>
                <label>
                    "Theme"
                    <select on:change=move |ev| {
                        theme.set(DisplayTheme::parse(&event_target_value(&ev)).unwrap_or_default())
                    }>
                        <option value="dark">"dark"</option>
                        <option value="light">"light"</option>
                        <option value="system">"as the screen's system"</option>
                    </select>
                </label>
                <button type="submit">"Create display"</button>
            </form>
            <p class="form-message" role="status">{move || message.get()}</p>
            {move || link.get().map(|link| view! { <p class="display-link"><code>{link}</code></p> })}
            <ul class="display-rows">{move || displays.get().into_iter().map(row).collect_view()}</ul>
        </details>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display(last_seen_at: Option<i64>, revoked_at: Option<i64>) -> DisplayInfo {
        DisplayInfo {
            id: 1,
            settings: NewDisplay {
                name: "Wall".into(),
                dashboards: vec![1],
                rotate_secs: 30,
                theme: DisplayTheme::Dark,
            },
            created_at: 0,
            last_seen_at,
            last_seen_addr: last_seen_at.map(|_| "10.0.0.7".to_owned()),
            revoked_at,
        }
    }

    #[test]
    fn a_display_says_when_and_from_where_it_was_seen() {
        assert_eq!(seen_words(&display(None, None), 100), "never seen");
        assert_eq!(seen_words(&display(Some(90), None), 100), "seen just now from 10.0.0.7");
        assert_eq!(seen_words(&display(Some(0), None), 600), "seen 10 min ago from 10.0.0.7");
        assert_eq!(seen_words(&display(Some(0), None), 7200), "seen 2 h ago from 10.0.0.7");
        assert_eq!(seen_words(&display(Some(0), Some(5)), 7200), "revoked");
    }
}
