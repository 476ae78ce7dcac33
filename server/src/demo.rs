//! Demo mode: two tenants with users and API keys, so a fresh install can be tried at once.

use crate::{
    auth::api_key::ApiKey,
    broker::topic_name::TenantId,
    ingest::demo_feed,
    store::{Store, StoreError, accounts::Role},
};

/// Every demo user's password.
pub const PASSWORD: &str = "livedash-demo";
const KEY_LABEL: &str = "demo";

/// (e-mail, tenant, role) of each demo user.
pub const USERS: [(&str, &str, Role); 3] = [
    ("ops@acme.test", "acme", Role::Admin),
    ("ops@globex.test", "globex", Role::Admin),
    ("viewer@acme.test", "acme", Role::Viewer),
];

/// Creates the demo tenants and users (resetting their passwords), and issues a fresh API key per
/// tenant, revoking the previous demo keys: only a hash is stored, so a key can only be shown when it
/// is made.
pub async fn seed(store: &Store) -> Result<Vec<(TenantId, ApiKey)>, StoreError> {
    let mut keys = Vec::new();
    for tenant in demo_feed::tenants() {
        let name = format!("{} (demo)", capitalised(tenant.as_str()));
        store.ensure_tenant(&tenant, &name).await?;
        store.revoke_api_keys(&tenant, KEY_LABEL).await?;
        keys.push((tenant.clone(), store.create_api_key(&tenant, KEY_LABEL).await?));
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
