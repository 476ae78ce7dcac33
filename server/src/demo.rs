//! Demo mode: two tenants with users, API keys and an Operations dashboard, so a fresh install can be
//! tried at once.

use crate::{
    credentials::api_key::ApiKey,
    ingest::demo_feed::{self, JOBS_TOPIC, OPEN_ORDERS_TOPIC, TICKETS_TOPIC},
    presence::ONLINE_TOPIC,
    store::{Store, StoreError, accounts::Role},
    topic_name::TenantId,
};
use app::pages::{DEMO_KPI_TOPIC, DEMO_ORDERS_TOPIC};
use protocol::dashboard::{NewWidget, WidgetKind, WidgetMode};
use protocol::topics::NOTIFICATIONS_TOPIC;

/// Every demo user's password.
pub const PASSWORD: &str = "livedash-demo";
const KEY_LABEL: &str = "demo";

/// (e-mail, tenant, role) of each demo user.
pub const USERS: [(&str, &str, Role); 3] = [
    ("ops@acme.test", "acme", Role::Admin),
    ("ops@globex.test", "globex", Role::Admin),
    ("viewer@acme.test", "acme", Role::Viewer),
];

/// The dashboard each demo tenant starts with: (title, kind, topic).
pub const DASHBOARD: &str = "Operations";
const WIDGETS: [(&str, WidgetKind, &str); 7] = [
    ("Today", WidgetKind::KpiTiles, DEMO_KPI_TOPIC),
    ("Orders per second", WidgetKind::LineChart, DEMO_ORDERS_TOPIC),
    ("Support tickets", WidgetKind::BarChart, TICKETS_TOPIC),
    ("Open orders", WidgetKind::DocumentTable, OPEN_ORDERS_TOPIC),
    ("Jobs", WidgetKind::JobPanel, JOBS_TOPIC),
    ("Notifications", WidgetKind::NotificationFeed, NOTIFICATIONS_TOPIC),
    ("Who's online", WidgetKind::ActiveUsers, ONLINE_TOPIC),
];

/// Creates the demo tenants and users (resetting their passwords), and issues a fresh API key per
/// tenant, revoking the previous demo keys: only a hash is stored, so a key can only be shown when it
/// is made (with several nodes in demo mode, the keys the last one printed are the ones that work).
/// The demo dashboards are made once for the deployment, by the first node to claim them.
pub async fn seed(store: &Store) -> Result<Vec<(TenantId, ApiKey)>, StoreError> {
    let mut keys = Vec::new();
    for tenant in demo_feed::tenants() {
        let name = format!("{} (demo)", capitalised(tenant.as_str()));
        store.ensure_tenant(&tenant, &name).await?;
        store.revoke_api_keys(&tenant, KEY_LABEL).await?;
        keys.push((tenant.clone(), store.create_api_key(&tenant, KEY_LABEL).await?));
        // Only on first start: what admins changed since stays as they left it.
        if store.dashboards(&tenant).await?.is_empty() && store.claim_once(&format!("demo dashboard {tenant}")).await? {
            let dashboard = store.create_dashboard(&tenant, DASHBOARD).await?;
            for (title, kind, topic) in WIDGETS {
                let widget = NewWidget {
                    title: title.into(),
                    kind,
                    topic: topic.into(),
                    default_mode: WidgetMode::Live,
                    notify: None,
                    thresholds: vec![],
                };
                store
                    .add_widget(&tenant, dashboard.id, &widget)
                    .await?
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
            }
        }
    }
    for (email, tenant, role) in USERS {
        let tenant = TenantId::parse(tenant).expect("demo tenants are valid");
        store.upsert_user(email, PASSWORD, &tenant, role).await?;
    }
    Ok(keys)
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
