//! Who is online (`presence/online`, kept by the server from live connections) and what people did
//! lately (`presence/activity`: sign-ins, sign-outs, dashboards opened, modes changed).

use super::frame::{Framed, WidgetFrame};
use crate::live::{
    documents::{Documents, clock_time},
    notifications::Notifications,
    use_topic,
};
use leptos::prelude::*;
use protocol::dashboard::{WidgetDef, WidgetMode};
use protocol::topics::PRESENCE_ACTIVITY_TOPIC;

/// Activity lines shown.
const RECENT: usize = 6;

#[component]
pub fn ActiveUsers(def: WidgetDef, mode: WidgetMode) -> AnyView {
    let online = use_topic::<Documents>(&def.dom_id(), &def.topic, mode);
    let activity = use_topic::<Notifications>(&def.activity_feed_id(), PRESENCE_ACTIVITY_TOPIC, mode);
    // The frame's mode and refresh drive both feeds.
    let mut framed = Framed::new(&def, online);
    let (set_online, refresh_online) = (framed.set_mode, framed.refresh);
    framed.set_mode = Callback::new(move |m| {
        set_online.run(m);
        activity.set_mode(m);
    });
    framed.refresh = Callback::new(move |()| {
        refresh_online.run(());
        activity.refresh();
    });

    let is_display =
        |doc: &serde_json::Map<String, serde_json::Value>| doc.get("role").and_then(|r| r.as_str()) == Some("display");
    let people = move || {
        online.data.with(|docs| {
            docs.iter()
                .filter(|(_, doc)| !is_display(doc))
                .map(|(id, doc)| {
                    let text = |k: &str| doc.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                    let since = doc.get("since").and_then(|v| v.as_i64()).map(clock_time).unwrap_or_default();
                    let tabs = doc.get("connections").and_then(|v| v.as_u64()).unwrap_or(1);
                    let doing = doc.get("activity").and_then(|v| v.as_str()).map(|a| {
                        let at = doc.get("activeAt").and_then(|v| v.as_i64()).map(clock_time).unwrap_or_default();
                        format!("{a} at {at}")
                    });
                    view! {
                        <li class="person" data-user=id.clone()>
                            <span class="presence-dot" aria-hidden="true"></span>
                            <strong>{text("email")}</strong>
                            <span class="role">{text("role")}</span>
                            <span class="since">
                                {format!("online since {since}{}", if tabs > 1 { format!(" · {tabs} tabs") } else { String::new() })}
                            </span>
                            {doing.map(|d| view! { <span class="doing">{d}</span> })}
                        </li>
                    }
                })
                .collect_view()
        })
    };
    // Wall displays are no people: listed apart, by name, with how long they have been on.
    let displays = move || {
        online.data.with(|docs| {
            docs.iter()
                .filter(|(_, doc)| is_display(doc))
                .map(|(id, doc)| {
                    let name = doc.get("email").and_then(|v| v.as_str()).unwrap_or_default();
                    let name = name.strip_prefix("display ").unwrap_or(name).to_owned();
                    let since = doc.get("since").and_then(|v| v.as_i64()).map(clock_time).unwrap_or_default();
                    view! {
                        <li class="display-online" data-user=id.clone()>
                            <span class="presence-dot" aria-hidden="true"></span>
                            <strong>{name}</strong>
                            <span class="since">{format!("on since {since}")}</span>
                        </li>
                    }
                })
                .collect_view()
        })
    };
    let people_count = move || online.data.with(|docs| docs.iter().filter(|(_, doc)| !is_display(doc)).count());
    let display_count = move || online.data.with(|docs| docs.iter().filter(|(_, doc)| is_display(doc)).count());
    let recent = move || {
        activity.data.with(|a| {
            a.newest_first()
                .take(RECENT)
                .map(|n| view! { <li><time>{clock_time(n.event.ts)}</time>" "{n.event.title.clone()}</li> })
                .collect_view()
        })
    };
    view! {
        <WidgetFrame framed=framed>
            <p class="online-count">{move || format!("{} online", people_count())}</p>
            <ul class="people">{people}</ul>
            <Show when=move || { display_count() > 0 }>
                <h3 class="subhead">{move || format!("Wall displays ({})", display_count())}</h3>
                <ul class="people displays-online">{displays}</ul>
            </Show>
            <h3 class="subhead">"Recent activity"</h3>
            <ul class="activity">{recent}</ul>
        </WidgetFrame>
    }
    .into_any()
}
