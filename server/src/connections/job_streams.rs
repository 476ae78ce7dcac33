//! How many streams of each job each user has open, to cap them at
//! `LIVEDASH_MAX_JOB_STREAMS_PER_USER` (the job stream's handler takes a slot before its seat).

use crate::topic_name::TopicKey;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// Open streams per user and job, to cap them.
#[derive(Debug, Default)]
pub struct JobStreamCounts {
    open: Mutex<HashMap<(i64, TopicKey, String), usize>>,
}

/// One open job stream; frees its place when dropped.
pub struct JobStreamSlot {
    counts: Arc<JobStreamCounts>,
    key: (i64, TopicKey, String),
}

impl JobStreamCounts {
    /// A place for one more stream of `job` for `user`, unless they have `max` open.
    pub fn take(self: &Arc<Self>, user: i64, topic: &TopicKey, job: &str, max: usize) -> Option<JobStreamSlot> {
        let key = (user, topic.clone(), job.to_owned());
        let mut open = self.open.lock().expect("job streams lock");
        let count = open.entry(key.clone()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(JobStreamSlot { counts: self.clone(), key })
    }
}

impl Drop for JobStreamSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().expect("job streams lock");
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic_name::{TenantId, TopicName};

    #[test]
    fn job_streams_are_capped_per_user_and_job_and_freed_on_drop() {
        let counts = Arc::new(JobStreamCounts::default());
        let topic = TopicKey::new(TenantId::parse("acme").unwrap(), TopicName::parse("ops/jobs").unwrap());
        let first = counts.take(1, &topic, "job-1", 2).unwrap();
        let _second = counts.take(1, &topic, "job-1", 2).unwrap();
        assert!(counts.take(1, &topic, "job-1", 2).is_none());
        assert!(counts.take(1, &topic, "job-2", 2).is_some(), "another job");
        assert!(counts.take(2, &topic, "job-1", 2).is_some(), "another user");
        drop(first);
        assert!(counts.take(1, &topic, "job-1", 2).is_some());
        assert_eq!(counts.open.lock().unwrap().len(), 1, "only job-1 of user 1 is still open");
    }
}
