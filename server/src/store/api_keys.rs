//! Publishers' API keys.

use super::{Store, StoreError, on_backend};
use crate::clock::now_secs;
use crate::{credentials::api_key::ApiKey, topic_name::TenantId};

impl Store {
    /// Issues a key for `tenant`; the returned value is the only time the secret is seen.
    pub async fn create_api_key(&self, tenant: &TenantId, label: &str) -> Result<ApiKey, StoreError> {
        let key = ApiKey::generate();
        on_backend!(self, pool => {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, secret_hash, label, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.id)
            .bind(tenant.as_str())
            .bind(key.secret_hash())
            .bind(label)
            .bind(now_secs())
            .execute(pool)
            .await?;
        });
        Ok(key)
    }

    /// Revokes every key of `tenant` with this label.
    pub async fn revoke_api_keys(&self, tenant: &TenantId, label: &str) -> Result<(), StoreError> {
        on_backend!(self, pool => {
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND label = $3 AND revoked_at IS NULL",
            )
            .bind(now_secs())
            .bind(tenant.as_str())
            .bind(label)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The tenant a presented key belongs to, if the key is valid and not revoked.
    pub async fn api_key_tenant(&self, key: &ApiKey) -> Result<Option<TenantId>, StoreError> {
        let row: Option<(String, Vec<u8>)> = on_backend!(self, pool => {
            sqlx::query_as("SELECT tenant_id, secret_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
                .bind(&key.id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.filter(|(_, hash)| key.matches(hash)).and_then(|(tenant, _)| TenantId::parse(&tenant).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::on_each_backend;

    on_each_backend!(keys_resolve_to_their_tenant_until_revoked);

    async fn keys_resolve_to_their_tenant_until_revoked(store: Store) {
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        let key = store.create_api_key(&acme, "demo").await.unwrap();
        assert_eq!(store.api_key_tenant(&key).await.unwrap(), Some(acme.clone()));

        let forged = ApiKey { secret: "0".repeat(32), ..key.clone() };
        assert_eq!(store.api_key_tenant(&forged).await.unwrap(), None, "right id, wrong secret");

        store.revoke_api_keys(&acme, "demo").await.unwrap();
        assert_eq!(store.api_key_tenant(&key).await.unwrap(), None);
    }
}
