//! Tenants and their users.

use super::{Store, StoreError, on_backend};
use crate::clock::now_secs;
use crate::{credentials::password, topic_name::TenantId};
use protocol::LiveMode;
use serde::Serialize;

/// Defined in the protocol: topic rules name roles, and the browser edits them.
pub use protocol::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub email: String,
    #[serde(serialize_with = "tenant_str")]
    #[schema(value_type = String)]
    pub tenant: TenantId,
    pub role: Role,
}

fn tenant_str<S: serde::Serializer>(t: &TenantId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub live_mode: LiveMode,
}

type UserRow = (i64, String, String, String);

pub(super) fn user_from(row: UserRow) -> Result<User, StoreError> {
    let (id, email, tenant, role) = row;
    Ok(User {
        id,
        email,
        tenant: TenantId::parse(&tenant).map_err(|e| StoreError::Invalid(e.to_string()))?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Invalid(format!("unknown role {role:?}")))?,
    })
}

/// An e-mail address in the one form accounts are stored under, looked up by and throttled by:
/// surrounding whitespace (any Unicode space, and the invisible zero-width ones) trimmed, case
/// folded. Every limiter on sign-ins keys on this too: a limiter that saw `" Ops@x.test"` as
/// another account than the lookup does would let an attacker reset it by spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailKey(String);

impl EmailKey {
    pub fn new(raw: &str) -> Self {
        let invisible = |c: char| {
            c.is_whitespace() || c.is_control() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
        };
        // Lower case, then the few full case foldings lower case misses.
        let folded: String = raw.trim_matches(invisible).to_lowercase().replace('ß', "ss").replace('ς', "σ");
        Self(folded)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EmailKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Store {
    /// Creates the tenant if it does not exist (its live mode starts `live`).
    pub async fn ensure_tenant(&self, id: &TenantId, name: &str) -> Result<(), StoreError> {
        on_backend!(self, pool => {
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
                .bind(id.as_str())
                .bind(name)
                .bind(now_secs())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let row: Option<(String, String)> = on_backend!(self, pool => {
            sqlx::query_as("SELECT name, live_mode FROM tenants WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(pool)
                .await?
        });
        let Some((name, mode)) = row else { return Ok(None) };
        let live_mode =
            LiveMode::parse(&mode).ok_or_else(|| StoreError::Invalid(format!("tenant {id} has live mode {mode:?}")))?;
        Ok(Some(Tenant { id: id.clone(), name, live_mode }))
    }

    /// Sets the tenant's live mode (and the on/off column that nodes of the previous release read).
    pub async fn set_live_mode(&self, id: &TenantId, mode: LiveMode) -> Result<(), StoreError> {
        on_backend!(self, pool => {
            sqlx::query("UPDATE tenants SET live_mode = $1, live_dashboards = $2 WHERE id = $3")
                .bind(mode.as_str())
                .bind(mode != LiveMode::Off)
                .bind(id.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Creates the user, or resets their password, tenant and role.
    pub async fn upsert_user(
        &self,
        email: &str,
        password: &str,
        tenant: &TenantId,
        role: Role,
    ) -> Result<i64, StoreError> {
        let password = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|e| StoreError::Hash(e.to_string()))?
            .map_err(StoreError::Hash)?;
        let (id,): (i64,) = on_backend!(self, pool => {
            sqlx::query_as(
                "INSERT INTO users (email, password_hash, tenant_id, role, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash,
                     tenant_id = excluded.tenant_id, role = excluded.role
                 RETURNING id",
            )
            .bind(EmailKey::new(email).as_str())
            .bind(&hash)
            .bind(tenant.as_str())
            .bind(role.as_str())
            .bind(now_secs())
            .fetch_one(pool)
            .await?
        });
        Ok(id)
    }

    /// The user with this e-mail and password, or `None`. Takes as long for an unknown e-mail as
    /// for a wrong password, so timing does not tell which e-mails exist.
    pub async fn check_login(&self, email: &EmailKey, password: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String, String, String, String)> = on_backend!(self, pool => {
            sqlx::query_as("SELECT id, email, tenant_id, role, password_hash FROM users WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?
        });
        let hash = row.as_ref().map_or_else(|| password::decoy_hash().to_owned(), |r| r.4.clone());
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || password::verify(&hash, &password))
            .await
            .map_err(|e| StoreError::Hash(e.to_string()))?;
        match row {
            Some((id, email, tenant, role, _)) if matches => user_from((id, email, tenant, role)).map(Some),
            _ => Ok(None),
        }
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_backend!(self, pool => {
            sqlx::query_as("SELECT id, email, tenant_id, role FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(user_from).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::on_each_backend;

    #[test]
    fn one_spelling_per_address() {
        let key = EmailKey::new("ops@globex.test");
        for spelling in [" ops@globex.test", "ops@globex.test\t", "OPS@Globex.TEST", "\u{2003}ops@globex.test\u{FEFF}"]
        {
            assert_eq!(EmailKey::new(spelling), key, "{spelling:?}");
        }
        assert_eq!(EmailKey::new("STRAßE@x.test"), EmailKey::new("strasse@x.test"), "folded, not only lower-cased");
        assert_ne!(EmailKey::new("o ps@globex.test"), key, "inner characters are the address's own");
    }

    on_each_backend!(users_log_in_with_their_password_only, the_live_mode_starts_live_and_can_be_set);

    async fn users_log_in_with_their_password_only(store: Store) {
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        let id = store.upsert_user("Ops@Acme.test", "first", &acme, Role::Viewer).await.unwrap();
        let again = store.upsert_user("ops@acme.test", "s3cret", &acme, Role::Admin).await.unwrap();
        assert_eq!(id, again, "one account whatever the case of its e-mail");
        for spelling in
            [" ops@acme.test", "ops@acme.test\t", "\u{00A0}OPS@ACME.TEST\u{200B}", "\u{3000}Ops@Acme.Test\n"]
        {
            let user = store.check_login(&EmailKey::new(spelling), "s3cret").await.unwrap();
            assert_eq!(user.map(|u| u.id), Some(id), "{spelling:?} is the same account");
        }
        let user = store
            .check_login(&EmailKey::new("OPS@acme.test"), "s3cret")
            .await
            .unwrap()
            .expect("e-mail is case-insensitive");
        assert_eq!((user.email.as_str(), user.role, user.tenant.as_str()), ("ops@acme.test", Role::Admin, "acme"));
        assert_eq!(store.check_login(&EmailKey::new("ops@acme.test"), "wrong").await.unwrap(), None);
        assert_eq!(store.check_login(&EmailKey::new("nobody@acme.test"), "s3cret").await.unwrap(), None);
        assert_eq!(store.user(user.id).await.unwrap(), Some(user));
    }

    async fn the_live_mode_starts_live_and_can_be_set(store: Store) {
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        assert_eq!(store.tenant(&acme).await.unwrap().unwrap().live_mode, LiveMode::Live);
        for mode in [LiveMode::Polling, LiveMode::Off, LiveMode::Live] {
            store.set_live_mode(&acme, mode).await.unwrap();
            assert_eq!(store.tenant(&acme).await.unwrap().unwrap().live_mode, mode);
        }
        assert_eq!(store.tenant(&TenantId::parse("nope").unwrap()).await.unwrap(), None);
    }

    /// A database of the previous release, with a tenant turned off, keeps it off once migrated.
    #[tokio::test]
    async fn a_tenant_that_was_off_is_off_after_migrating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let mut previous = sqlx::migrate!("./migrations/sqlite");
        let before_modes = previous.migrations.iter().position(|m| m.description == "live mode").unwrap();
        previous.migrations = previous.migrations[..before_modes].to_vec().into();
        previous.run(&pool).await.unwrap();
        sqlx::query("INSERT INTO tenants (id, name, created_at, live_dashboards) VALUES ('acme', 'Acme', 0, 0), ('globex', 'Globex', 0, 1)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;

        let store = Store::open(path.to_str().unwrap()).await.unwrap();
        let mode = |id: &str| {
            let store = store.clone();
            let id = TenantId::parse(id).unwrap();
            async move { store.tenant(&id).await.unwrap().unwrap().live_mode }
        };
        assert_eq!(mode("acme").await, LiveMode::Off);
        assert_eq!(mode("globex").await, LiveMode::Live);
    }
}
