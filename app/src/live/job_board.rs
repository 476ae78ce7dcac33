//! What the job panel shows: the latest jobs of an `events` topic, each with its status, progress,
//! summary and log.
//!
//! A job is a run of `job` events sharing `data.jobId`; each event's `data.status` (`running`,
//! `succeeded`, `failed`) and `data.progress` (0–100) update it, and its body is a log line. Events
//! of other types are ignored.

use super::{session::Delivery, topic_view::TopicView};
use crate::protocol::{Event, Item, Level};
use serde::{Deserialize, Serialize};

/// Jobs kept, newest first.
pub const JOBS_KEPT: usize = 8;
/// Log lines kept per job.
pub const LOG_KEPT: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    fn parse(s: &str) -> Self {
        match s {
            "succeeded" | "success" | "done" => JobStatus::Succeeded,
            "failed" | "error" => JobStatus::Failed,
            _ => JobStatus::Running,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            JobStatus::Running => "Running",
            JobStatus::Succeeded => "Succeeded",
            JobStatus::Failed => "Failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub ts: i64,
    pub level: Level,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub status: JobStatus,
    pub progress: Option<u8>,
    pub started: i64,
    pub updated: i64,
    pub log: Vec<LogLine>,
}

impl Job {
    /// The one-line summary: the latest log line.
    pub fn summary(&self) -> &str {
        self.log.last().map_or("", |l| l.text.as_str())
    }

    pub fn errors(&self) -> impl Iterator<Item = &LogLine> {
        self.log.iter().filter(|l| l.level == Level::Error)
    }
}

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
                && event.event_type == "job"
            {
                self.record(event);
            }
        }
    }

    fn record(&mut self, event: &Event) {
        let data = event.data.as_ref();
        let field = |name: &str| data.and_then(|d| d.get(name));
        let id = field("jobId").and_then(|v| v.as_str()).unwrap_or(&event.title).to_owned();
        let status = JobStatus::parse(field("status").and_then(|v| v.as_str()).unwrap_or("running"));
        let progress = field("progress").and_then(|v| v.as_u64()).map(|p| p.min(100) as u8);
        let index = match self.jobs.iter().position(|j| j.id == id) {
            Some(i) => i,
            None => {
                let job = Job {
                    id,
                    name: event.title.clone(),
                    status,
                    progress: None,
                    started: event.ts,
                    updated: event.ts,
                    log: Vec::new(),
                };
                self.jobs.insert(0, job);
                self.jobs.truncate(JOBS_KEPT);
                0
            }
        };
        let job = &mut self.jobs[index];
        job.status = status;
        job.progress = progress.or(job.progress);
        job.updated = event.ts;
        if let Some(text) = &event.body {
            job.log.push(LogLine { ts: event.ts, level: event.level, text: text.clone() });
            let excess = job.log.len().saturating_sub(LOG_KEPT);
            job.log.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Meta, TopicKind};
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
