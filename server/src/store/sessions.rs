//! Login sessions. The signed cookie proves who someone is; this table says whether that login
//! still stands, so logging out takes effect at once, everywhere.

use super::{Store, StoreError, accounts::User, on_backend};
use crate::clock::now_secs;

impl Store {
    /// Records a new login for `user_id` that ends at `expires_at` (Unix seconds); returns its id.
    pub async fn create_session(&self, user_id: i64, expires_at: i64) -> Result<String, StoreError> {
        let id = format!("{:032x}", rand::random::<u128>());
        on_backend!(self, pool => {
            sqlx::query("INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(&id)
                .bind(user_id)
                .bind(now_secs())
                .bind(expires_at)
                .execute(pool)
                .await?;
        });
        Ok(id)
    }

    /// The user of a session that exists, has not been revoked and has not expired.
    pub async fn session_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String, String, String)> = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT u.id, u.email, u.tenant_id, u.role FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
            )
            .bind(id)
            .bind(now_secs())
            .fetch_optional(pool)
            .await?
        });
        row.map(super::accounts::user_from).transpose()
    }

    pub async fn revoke_session(&self, id: &str) -> Result<(), StoreError> {
        on_backend!(self, pool => {
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_secs())
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        clock::now_secs,
        store::{
            Store,
            accounts::{EmailKey, Role},
            testing::on_each_backend,
        },
        topic_name::TenantId,
    };

    on_each_backend!(sessions_end_when_revoked_or_expired);

    async fn sessions_end_when_revoked_or_expired(store: Store) {
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        store.upsert_user("a@acme.test", "pw", &acme, Role::Viewer).await.unwrap();
        let user = store.check_login(&EmailKey::new("a@acme.test"), "pw").await.unwrap().unwrap();

        let live = store.create_session(user.id, now_secs() + 60).await.unwrap();
        assert_eq!(store.session_user(&live).await.unwrap(), Some(user.clone()));
        store.revoke_session(&live).await.unwrap();
        assert_eq!(store.session_user(&live).await.unwrap(), None);

        let old = store.create_session(user.id, now_secs() - 1).await.unwrap();
        assert_eq!(store.session_user(&old).await.unwrap(), None);
        assert_eq!(store.session_user("made-up").await.unwrap(), None);
    }
}
