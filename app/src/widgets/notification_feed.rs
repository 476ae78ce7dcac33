//! A feed of an `events` topic's notifications, newest first, coloured by level.

use super::frame::{Framed, WidgetFrame};
use crate::live::{documents::clock_time, notifications::Notifications, use_topic};
use leptos::prelude::*;
use protocol::dashboard::{WidgetDef, WidgetMode};

/// Entries a feed widget shows.
const SHOWN: usize = 12;

#[component]
pub fn NotificationFeed(def: WidgetDef, mode: WidgetMode) -> AnyView {
    let feed = use_topic::<Notifications>(&def.dom_id(), &def.topic, mode);
    let entries = move || {
        feed.data.with(|n| {
            n.newest_first()
                .take(SHOWN)
                .map(|n| {
                    let scheduled = n.event.scheduled_at.map(|at| format!("Scheduled for {}", clock_time(at)));
                    view! {
                        <li class=format!("feed-entry level-{}", n.level.as_str())>
                            <time>{clock_time(n.event.ts)}</time>
                            <strong>{n.event.title.clone()}</strong>
                            <span>{n.event.body.clone().unwrap_or_default()}</span>
                            {scheduled.map(|s| view! { <span class="scheduled">{s}</span> })}
                        </li>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <WidgetFrame framed=Framed::new(&def, feed)>
            <ul class="feed">{entries}</ul>
            <Show when=move || feed.data.with(|n| n.newest_first().next().is_none())>
                <p class="empty">"Nothing yet."</p>
            </Show>
        </WidgetFrame>
    }
    .into_any()
}
