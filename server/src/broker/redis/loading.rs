//! Loading a topic into this node's copy: whole, the first time a viewer here follows it, with what
//! arrives meanwhile held and applied after; again when a message does not follow on; and a new
//! epoch when Redis came back without the topic.

use super::*;

impl RedisEngine {
    /// Starts loading `key` unless it is loading already.
    pub(super) fn load(&self, key: TopicKey) {
        let mut loading = self.loading.lock().expect("loading lock");
        self.load_locked(&mut loading, key, Vec::new());
    }

    pub(super) fn load_locked(&self, loading: &mut HashMap<TopicKey, Vec<Remote>>, key: TopicKey, held: Vec<Remote>) {
        self.load_locked_after(loading, key, held, None);
    }

    /// Like `load_locked`, first giving the topic a new epoch in Redis if it still has `went_back`.
    pub(super) fn load_locked_after(
        &self,
        loading: &mut HashMap<TopicKey, Vec<Remote>>,
        key: TopicKey,
        held: Vec<Remote>,
        went_back: Option<String>,
    ) {
        let Some(me) = self.me.upgrade() else { return };
        if loading.contains_key(&key) {
            return;
        }
        loading.insert(key.clone(), held);
        tokio::spawn(me.load_until_in_step(key, went_back));
    }

    pub(super) async fn load_until_in_step(self: Arc<Self>, key: TopicKey, mut went_back: Option<String>) {
        let keys = TopicKeys::new(&self.prefix, &key);
        loop {
            if let Some(epoch) = went_back.take() {
                self.start_new_epoch(&key, &keys, &epoch).await;
            }
            let loaded: Result<Option<wire::Loaded>, _> = self
                .load_script
                .key(&keys.meta)
                .key(&keys.log)
                .key(&keys.state)
                .invoke_async(&mut self.connection.clone())
                .await;
            let mut loading = self.loading.lock().expect("loading lock");
            let held = loading.remove(&key).unwrap_or_default();
            let image = match loaded {
                Ok(None) => None,
                Ok(Some(loaded)) => match wire::image(loaded) {
                    Some(image) => Some(image),
                    None => {
                        tracing::error!(topic = %key, "Redis holds a topic this node cannot read; leaving it");
                        return;
                    }
                },
                Err(e) => {
                    // The link's return reloads every topic held or awaited.
                    tracing::warn!(error = %e, topic = %key, "could not load a topic from Redis");
                    return;
                }
            };
            let epoch = image.as_ref().map(|image| image.epoch.clone());
            match self.broker.install(&key, image, &held) {
                Applied::Done | Applied::Duplicate | Applied::NotHeld => return,
                Applied::OutOfStep => {}
                Applied::WentBack => went_back = epoch,
            }
            loading.insert(key.clone(), Vec::new());
        }
    }

    /// Redis's offsets for `key` went back under `epoch` (a failover lost writes): positions taken
    /// in that epoch can no longer be trusted, so the topic gets a new one. Every node then finds
    /// its copy out of step and every subscriber gets a `gap` and a snapshot; a client that comes
    /// back holding an old position is told it was lost.
    pub(super) async fn start_new_epoch(&self, key: &TopicKey, keys: &TopicKeys, epoch: &str) {
        let started: redis::RedisResult<i64> = self
            .new_epoch_script
            .key(&keys.meta)
            .arg(epoch)
            .arg(new_epoch())
            .invoke_async(&mut self.connection.clone())
            .await;
        match started {
            Ok(_) => {
                metrics::counter!(telemetry::ENGINE_RELOADS, "reason" => "went_back").increment(1);
                tracing::warn!(topic = %key, "the topic's offsets went back in Redis (a failover?): it starts a new epoch");
            }
            Err(e) => tracing::warn!(error = %e, topic = %key, "could not give the topic a new epoch"),
        }
    }
}
