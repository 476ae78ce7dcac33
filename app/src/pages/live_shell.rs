//! The frame of every live page: one connection and the header (status, controls, notifications,
//! account) that stay put while the user moves between dashboards; the routed page renders below.

use crate::components::{LiveControls, LiveModeControl, NotificationCenter, StatusPill, UserMenu};
use crate::live::Live;
use leptos::prelude::*;
use leptos_router::components::Outlet;
use protocol::topics::NOTIFICATIONS_TOPIC;

/// The heading the routed page puts in the header.
#[derive(Clone, Copy)]
pub struct PageHeading(pub RwSignal<String>);

#[component]
pub fn LiveShell() -> AnyView {
    Live::provide();
    let heading = RwSignal::new(String::new());
    provide_context(PageHeading(heading));
    view! {
        <header class="app-header">
            <span class="brand">"livedash"</span>
            <h1 class="dashboard-title">{move || heading.get()}</h1>
            <StatusPill/>
            <LiveControls/>
            <LiveModeControl/>
            <NotificationCenter topic=NOTIFICATIONS_TOPIC/>
            <UserMenu/>
        </header>
        <Outlet/>
    }
    .into_any()
}
