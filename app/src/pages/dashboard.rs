use crate::components::{LiveControls, NotificationCenter, StatusPill, UserMenu};
use crate::live::Live;
use crate::widgets::{KpiTiles, LineChart};
use leptos::prelude::*;
use leptos_meta::Title;

/// The topics the built-in demo feed publishes to.
pub const DEMO_ORDERS_TOPIC: &str = "sales/orders";
pub const DEMO_KPI_TOPIC: &str = "kpi/overview";
pub const DEMO_NOTIFICATIONS_TOPIC: &str = "ops/notifications";

#[component]
pub fn DashboardPage() -> AnyView {
    Live::provide();
    view! {
        <Title text="Operations — livedash"/>
        <header class="app-header">
            <span class="brand">"livedash"</span>
            <h1 class="dashboard-title">"Operations"</h1>
            <StatusPill/>
            <LiveControls/>
            <NotificationCenter topic=DEMO_NOTIFICATIONS_TOPIC/>
            <UserMenu/>
        </header>
        <main class="grid">
            <KpiTiles widget_id="kpis" topic=DEMO_KPI_TOPIC title="Today"/>
            <LineChart widget_id="orders" topic=DEMO_ORDERS_TOPIC title="Orders per second"/>
        </main>
    }
    // A page's view type nests every element and component in it; erasing it here keeps the types
    // the compiler must lay out shallow (it otherwise exceeds the query depth limit).
    .into_any()
}
