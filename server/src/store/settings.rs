//! Small server-wide values that must survive restarts (the session-signing secret).

use super::{Store, StoreError, on_backend};

impl Store {
    /// The value under `key`, creating it with `make()` on first use.
    pub async fn setting_or_init(&self, key: &str, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let made = make();
        let (value,): (Vec<u8>,) = on_backend!(self, pool => {
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(&made)
                .execute(pool)
                .await?;
            sqlx::query_as("SELECT value FROM settings WHERE key = $1").bind(key).fetch_one(pool).await?
        });
        Ok(value)
    }
}

impl Store {
    /// Claims `key` for whoever asks first, ever: `true` for that one caller, in the whole
    /// deployment (for one-time set-up that several nodes starting together might each try).
    pub async fn claim_once(&self, key: &str) -> Result<bool, StoreError> {
        let claimed = on_backend!(self, pool => {
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(&b"claimed"[..])
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(claimed == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, testing::on_each_backend};

    on_each_backend!(a_setting_is_made_once_and_then_kept, a_claim_goes_to_the_first_caller_only);

    async fn a_setting_is_made_once_and_then_kept(store: Store) {
        let first = store.setting_or_init("k", || vec![1, 2, 3]).await.unwrap();
        let second = store.setting_or_init("k", || vec![9]).await.unwrap();
        assert_eq!((first, second), (vec![1, 2, 3], vec![1, 2, 3]));
    }

    async fn a_claim_goes_to_the_first_caller_only(store: Store) {
        let claims = (0..8).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_once("seed").await.unwrap() })
        });
        let won: Vec<bool> = futures_util::future::join_all(claims).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
        assert!(!store.claim_once("seed").await.unwrap());
        assert!(store.claim_once("another").await.unwrap());
    }
}
