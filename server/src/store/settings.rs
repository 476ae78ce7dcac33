//! Small server-wide values that must survive restarts (the session-signing secret).

use super::{Store, StoreError};

impl Store {
    /// The value under `key`, creating it with `make()` on first use.
    pub async fn setting_or_init(&self, key: &str, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(make())
            .execute(self.pool())
            .await?;
        let (value,): (Vec<u8>,) =
            sqlx::query_as("SELECT value FROM settings WHERE key = ?").bind(key).fetch_one(self.pool()).await?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::store;

    #[tokio::test]
    async fn a_setting_is_made_once_and_then_kept() {
        let (store, _dir) = store().await;
        let first = store.setting_or_init("k", || vec![1, 2, 3]).await.unwrap();
        let second = store.setting_or_init("k", || vec![9]).await.unwrap();
        assert_eq!((first, second), (vec![1, 2, 3], vec![1, 2, 3]));
    }
}
