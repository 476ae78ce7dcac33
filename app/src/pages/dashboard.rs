use crate::components::{LiveControls, StatusPill, UserMenu};
use crate::live::Live;
use crate::widgets::{KpiTiles, LineChart};
use leptos::prelude::*;
use leptos_meta::Title;

/// The topics the built-in demo feed publishes to.
pub const DEMO_ORDERS_TOPIC: &str = "sales/orders";
pub const DEMO_KPI_TOPIC: &str = "kpi/overview";

#[component]
pub fn DashboardPage() -> impl IntoView {
    Live::provide();
    view! {
        <Title text="Operations — livedash"/>
        <header class="app-header">
            <span class="brand">"livedash"</span>
            <h1 class="dashboard-title">"Operations"</h1>
            <StatusPill/>
            <LiveControls/>
            <UserMenu/>
        </header>
        <main class="grid">
            <KpiTiles widget_id="kpis" topic=DEMO_KPI_TOPIC title="Today"/>
            <LineChart widget_id="orders" topic=DEMO_ORDERS_TOPIC title="Orders per second"/>
        </main>
    }
}
