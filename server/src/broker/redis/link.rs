//! The pub/sub link every node keeps to Redis: what it hears is applied to this node's copies;
//! when it drops, the node reports not ready, reconnects with backoff and reloads what it holds.

use super::*;

impl RedisEngine {
    /// What the link hears.
    pub(super) fn heard(&self, payload: &[u8]) {
        let Some(remote) = std::str::from_utf8(payload).ok().and_then(wire::message) else {
            metrics::counter!(telemetry::DENIALS, "reason" => "bad_engine_message").increment(1);
            tracing::warn!("ignored a message on a livedash channel that is not one of ours");
            return;
        };
        let mut loading = self.loading.lock().expect("loading lock");
        if let Some(held) = loading.get_mut(&remote.key) {
            if held.len() < MAX_HELD {
                held.push(remote);
            }
            return;
        }
        match self.broker.apply_remote(&remote, Instant::now()) {
            Applied::Done | Applied::Duplicate => {}
            Applied::NotHeld if self.broker.awaited(&remote.key) => {
                self.load_locked(&mut loading, remote.key.clone(), Vec::new());
            }
            Applied::NotHeld => {}
            Applied::OutOfStep => {
                metrics::counter!(telemetry::ENGINE_RELOADS, "reason" => "out_of_step").increment(1);
                let key = remote.key.clone();
                self.load_locked(&mut loading, key, vec![remote]);
            }
            Applied::WentBack => {
                let (key, epoch) = (remote.key.clone(), remote.epoch.clone());
                self.load_locked_after(&mut loading, key, Vec::new(), Some(epoch));
            }
        }
    }

    /// Keeps the pub/sub link up, until shutdown.
    pub(super) async fn listen(self: Arc<Self>, mut shutdown: ShutdownSignal) {
        let backoff =
            Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(5), factor: 2.0, jitter: 0.2 };
        let mut attempt = 0u32;
        let notices = keys::notices_channel(&self.prefix);
        loop {
            match tokio::time::timeout(COMMAND_TIMEOUT, self.link()).await {
                Ok(Ok(pubsub)) => {
                    attempt = 0;
                    self.linked.store(true, Ordering::Release);
                    tracing::info!("linked to Redis");
                    // Whatever was published while unlinked is in Redis, not in the copies.
                    self.reload_everything();
                    // And whatever the others announced meanwhile is lost: this node checks its
                    // sockets again, and tells them what it could not.
                    if let Some(handle) = self.notices.get() {
                        handle(Notice::Missed);
                    }
                    self.flush_unsent();
                    let (mut sink, mut stream) = pubsub.split();
                    let mut check = tokio::time::interval(LINK_CHECK);
                    loop {
                        tokio::select! {
                            message = stream.next() => match message {
                                Some(message) if message.get_channel_name() == notices => {
                                    self.heard_notice(message.get_payload_bytes());
                                }
                                Some(message) => self.heard(message.get_payload_bytes()),
                                None => break,
                            },
                            _ = check.tick() => {
                                let pong = tokio::time::timeout(LINK_CHECK, sink.ping::<redis::Value>()).await;
                                if !matches!(pong, Ok(Ok(_))) {
                                    break;
                                }
                                // The link may have stayed up while commands failed.
                                self.flush_unsent();
                            }
                            _ = shutdown.stopping() => return,
                        }
                    }
                    self.linked.store(false, Ordering::Release);
                    metrics::counter!(telemetry::ENGINE_LINK_LOST).increment(1);
                    tracing::warn!("lost the link to Redis; serving what this node holds and reconnecting");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot link to Redis"),
                Err(_) => tracing::warn!("linking to Redis timed out"),
            }
            attempt += 1;
            tokio::select! {
                _ = tokio::time::sleep(backoff.delay(attempt, rand::random())) => {}
                _ = shutdown.stopping() => return,
            }
        }
    }

    pub(super) async fn link(&self) -> redis::RedisResult<redis::aio::PubSub> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(keys::channels(&self.prefix)).await?;
        pubsub.subscribe(keys::notices_channel(&self.prefix)).await?;
        Ok(pubsub)
    }

    pub(super) fn reload_everything(&self) {
        let mut keys: Vec<TopicKey> = self.broker.held().into_iter().map(|(key, _)| key).collect();
        keys.extend(self.broker.awaited_topics());
        if !keys.is_empty() {
            metrics::counter!(telemetry::ENGINE_RELOADS, "reason" => "relinked").increment(keys.len() as u64);
        }
        let mut loading = self.loading.lock().expect("loading lock");
        for key in keys {
            self.load_locked(&mut loading, key, Vec::new());
        }
    }

    /// Topics viewers here follow must not expire in Redis while nobody publishes to them.
    pub(super) async fn keep_alive(self: Arc<Self>, mut shutdown: ShutdownSignal) {
        let every = (self.config.topic_idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(300));
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.stopping() => return,
            }
            for (key, followed) in self.broker.held() {
                if !followed {
                    continue;
                }
                let keys = TopicKeys::new(&self.prefix, &key);
                let touched: redis::RedisResult<i64> = self
                    .touch_script
                    .key(&keys.meta)
                    .key(&keys.log)
                    .key(&keys.state)
                    .key(&keys.tenant_topics)
                    .key(&keys.tenant_usage)
                    .arg(key.name.as_str())
                    .arg(self.idle_ms())
                    .invoke_async(&mut self.connection.clone())
                    .await;
                if let Err(e) = touched {
                    tracing::debug!(error = %e, "could not keep a topic alive in Redis");
                    break;
                }
            }
        }
    }
}
