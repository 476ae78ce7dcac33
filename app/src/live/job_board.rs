//! What the job panel shows: the latest jobs of an `events` topic, each with its status, progress,
//! summary and log. What a job is, and how its steps fold into it, is the protocol's
//! ([`protocol::jobs`]), shared with the server's job stream.

use super::{session::Delivery, topic_view::TopicView};
use protocol::Item;
use protocol::jobs::{Job, JobStep};
use serde::{Deserialize, Serialize};

/// Jobs kept, newest first.
pub const JOBS_KEPT: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobBoard {
    /// Newest first.
    jobs: Vec<Job>,
}

impl TopicView for JobBoard {
    fn apply(&mut self, delivery: &Delivery) {
        match delivery {
            Delivery::Snapshot { series, .. } => {
                self.jobs.clear();
                self.add(series);
            }
            Delivery::Update { series, .. } => self.add(series),
            Delivery::Gap | Delivery::Error { .. } => {}
        }
    }
}

impl JobBoard {
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    fn add(&mut self, items: &[Item]) {
        for item in items {
            if let Item::Event(event) = item
                && let Some(step) = JobStep::of(event)
            {
                self.record(step, event.ts);
            }
        }
    }

    fn record(&mut self, step: JobStep, ts: i64) {
        let index = match self.jobs.iter().position(|j| j.id == step.job_id) {
            Some(i) => i,
            None => {
                self.jobs.insert(0, Job::new(&step, ts));
                self.jobs.truncate(JOBS_KEPT);
                0
            }
        };
        self.jobs[index].record(step, ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::jobs::{JobStatus, LOG_KEPT};
    use protocol::{Event, Level};
    use protocol::{Meta, TopicKind};
    use serde_json::json;

    fn job(id: &str, status: &str, progress: u64, level: Level, line: &str) -> Item {
        Item::Event(Event {
            id: format!("{id}-{line}"),
            ts: 1,
            event_type: "job".into(),
            level,
            title: format!("Job {id}"),
            body: Some(line.into()),
            severity: None,
            scheduled_at: None,
            data: json!({"jobId": id, "status": status, "progress": progress}).as_object().cloned(),
        })
    }

    fn update(items: Vec<Item>) -> Delivery {
        let meta = Meta {
            topic: "t".into(),
            kind: TopicKind::Events,
            epoch: "e".into(),
            offset: 1,
            resume_token: "e.1".into(),
        };
        Delivery::Update { series: items, meta, ts: 0 }
    }

    #[test]
    fn a_job_collects_status_progress_log_and_errors() {
        let mut board = JobBoard::default();
        board.apply(&update(vec![job("a", "running", 0, Level::Info, "Started")]));
        board.apply(&update(vec![job("a", "running", 40, Level::Info, "Rendering")]));
        board.apply(&update(vec![job("b", "running", 0, Level::Info, "Started")]));
        board.apply(&update(vec![job("a", "failed", 75, Level::Error, "Upstream 503")]));
        let [b, a] = board.jobs() else { panic!("{board:?}") };
        assert_eq!((b.id.as_str(), b.status), ("b", JobStatus::Running));
        assert_eq!((a.status, a.progress, a.summary()), (JobStatus::Failed, Some(75), "Upstream 503"));
        assert_eq!(a.log.len(), 3);
        assert_eq!(a.errors().count(), 1);
    }

    #[test]
    fn only_job_events_count_and_both_lists_are_bounded() {
        let mut board = JobBoard::default();
        let mut other = job("x", "running", 0, Level::Info, "x");
        if let Item::Event(e) = &mut other {
            e.event_type = "notification".into();
        }
        board.apply(&update(vec![other]));
        assert!(board.jobs().is_empty());
        for i in 0..JOBS_KEPT + 3 {
            board.apply(&update(vec![job(&i.to_string(), "running", 0, Level::Info, "go")]));
        }
        assert_eq!(board.jobs().len(), JOBS_KEPT);
        for i in 0..LOG_KEPT + 10 {
            board.apply(&update(vec![job("10", "running", 1, Level::Info, &i.to_string())]));
        }
        assert_eq!(board.jobs()[0].log.len(), LOG_KEPT);
        assert_eq!(board.jobs()[0].summary(), (LOG_KEPT + 9).to_string());
    }
}
