//! Fresh stores for the tests, one per backend, and [`on_each_backend!`], which runs a test on both.

use super::Store;

#[path = "../../tests/support/postgres.rs"]
mod postgres;

/// A store and what keeps its database alive for the test.
pub struct TestStore {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// In a fresh temporary SQLite file.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        Self { store: Store::open(path.to_str().unwrap()).await.unwrap(), _dir: Some(dir) }
    }

    /// In a fresh database on this test process's own PostgreSQL, which `Store::open` creates.
    pub async fn postgres() -> Self {
        let url = tokio::task::spawn_blocking(postgres::fresh_database).await.unwrap();
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend_name(), "postgres");
        Self { store, _dir: None }
    }
}

/// For each named `async fn(Store)`, a test module of that name with two tests, `sqlite` and
/// `postgres`, each running it on a fresh store of that backend.
macro_rules! on_each_backend {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                let test = $crate::store::testing::TestStore::sqlite().await;
                super::$test(test.store.clone()).await;
            }

            #[tokio::test]
            async fn postgres() {
                let test = $crate::store::testing::TestStore::postgres().await;
                super::$test(test.store.clone()).await;
            }
        }
    )+};
}
pub(crate) use on_each_backend;
