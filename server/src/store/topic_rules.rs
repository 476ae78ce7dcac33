//! Each tenant's topic rules (see [`protocol::topic_rules`]), stored as their JSON with a version.

use super::{Store, StoreError, on_backend};
use crate::topic_name::TenantId;
use protocol::topic_rules::{TopicRule, TopicRules};

impl Store {
    /// The tenant's rules; none (version 0) until an admin first saves some.
    pub async fn topic_rules(&self, tenant: &TenantId) -> Result<TopicRules, StoreError> {
        let row: Option<(i64, String)> = on_backend!(self, pool => {
            sqlx::query_as("SELECT version, rules FROM topic_rules WHERE tenant = $1")
                .bind(tenant.as_str())
                .fetch_optional(pool)
                .await?
        });
        let Some((version, rules)) = row else { return Ok(TopicRules::default()) };
        let rules: Vec<TopicRule> = serde_json::from_str(&rules)
            .map_err(|e| StoreError::Invalid(format!("stored topic rules of {tenant}: {e}")))?;
        Ok(TopicRules { version: version as u64, rules })
    }

    /// Replaces the tenant's rules; returns their new version.
    pub async fn set_topic_rules(&self, tenant: &TenantId, rules: &[TopicRule]) -> Result<u64, StoreError> {
        let json = serde_json::to_string(rules).expect("rules always serialise");
        let (version,): (i64,) = on_backend!(self, pool => {
            sqlx::query_as(
                "INSERT INTO topic_rules (tenant, version, rules) VALUES ($1, 1, $2)
                 ON CONFLICT (tenant) DO UPDATE SET version = topic_rules.version + 1, rules = excluded.rules
                 RETURNING version",
            )
            .bind(tenant.as_str())
            .bind(&json)
            .fetch_one(pool)
            .await?
        });
        Ok(version as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, testing::on_each_backend};
    use crate::topic_name::TenantId;
    use protocol::{
        Role,
        topic_rules::{FieldRule, TopicRule, TopicRules},
    };

    on_each_backend!(rules_are_kept_per_tenant_with_a_growing_version);

    async fn rules_are_kept_per_tenant_with_a_growing_version(store: Store) {
        let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
        for tenant in [&acme, &globex] {
            store.ensure_tenant(tenant, tenant.as_str()).await.unwrap();
        }
        assert_eq!(store.topic_rules(&acme).await.unwrap(), TopicRules::default());
        let rules = vec![TopicRule {
            topics: "finance/**".into(),
            read: vec![Role::Admin],
            fields: vec![FieldRule { field: "salary".into(), roles: vec![Role::Admin] }],
        }];
        assert_eq!(store.set_topic_rules(&acme, &rules).await.unwrap(), 1);
        assert_eq!(store.topic_rules(&acme).await.unwrap(), TopicRules { version: 1, rules: rules.clone() });
        assert_eq!(store.set_topic_rules(&acme, &[]).await.unwrap(), 2);
        assert_eq!(store.topic_rules(&acme).await.unwrap(), TopicRules { version: 2, rules: vec![] });
        assert_eq!(store.topic_rules(&globex).await.unwrap().version, 0, "another tenant's rules are its own");
    }
}
