//! What the job panel shows: the latest jobs of an `events` topic, each with its status, progress,
//! summary and log.
//!
//! A job is a run of `job` events sharing `data.jobId`; each event's `data.status` (`running`,
//! `succeeded`, `failed`) and `data.progress` (0–100) update it, and its body is a log line. Events
//! of other types are ignored.

use super::{session::Delivery, topic_view::TopicView};
use crate::protocol::{Event, Item, Level};
use serde::{Deserialize, Serialize};

/// The `events` topic a tenant's jobs are published to, unless a job panel names another.
pub const JOBS_TOPIC: &str = "ops/jobs";

/// Longest job id (ids are 1–64 characters of `A-Z a-z 0-9 - _ . :`).
pub const MAX_JOB_ID_LEN: usize = 64;

/// Whether `id` can name a job.
pub fn valid_job_id(id: &str) -> bool {
    (1..=MAX_JOB_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

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
    pub fn parse(s: &str) -> Self {
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

    /// The job has ended.
    pub fn is_final(self) -> bool {
        self != JobStatus::Running
    }
}

/// What one `job` event says about its job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStep {
    pub job_id: String,
    pub name: String,
    pub status: JobStatus,
    /// 0–100, when the event says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    /// The event's body, as a line of the job's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LogLine>,
}

impl JobStep {
    /// `None` for events that are not about a job.
    pub fn of(event: &Event) -> Option<Self> {
        if event.event_type != "job" {
            return None;
        }
        let data = event.data.as_ref();
        let field = |name: &str| data.and_then(|d| d.get(name));
        Some(Self {
            job_id: field("jobId").and_then(|v| v.as_str()).unwrap_or(&event.title).to_owned(),
            name: event.title.clone(),
            status: JobStatus::parse(field("status").and_then(|v| v.as_str()).unwrap_or("running")),
            progress: field("progress").and_then(|v| v.as_u64()).map(|p| p.min(100) as u8),
            line: event.body.as_ref().map(|text| LogLine { ts: event.ts, level: event.level, text: text.clone() }),
        })
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

impl Job {
    /// A job as its first event shows it, before that event is recorded.
    pub fn new(step: &JobStep, ts: i64) -> Self {
        let (id, name) = (step.job_id.clone(), step.name.clone());
        Job { id, name, status: step.status, progress: None, started: ts, updated: ts, log: Vec::new() }
    }

    /// Applies one step: status, progress, and its log line (the log keeps the latest [`LOG_KEPT`]).
    pub fn record(&mut self, step: JobStep, ts: i64) {
        self.status = step.status;
        self.progress = step.progress.or(self.progress);
        self.updated = ts;
        if let Some(line) = step.line {
            self.log.push(line);
            let excess = self.log.len().saturating_sub(LOG_KEPT);
            self.log.drain(..excess);
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
    fn a_step_reads_its_job_status_progress_and_line_and_job_ids_are_checked() {
        let Item::Event(event) = job("j-1", "succeeded", 140, Level::Success, "Done") else { panic!() };
        let step = JobStep::of(&event).unwrap();
        assert_eq!((step.job_id.as_str(), step.status, step.progress), ("j-1", JobStatus::Succeeded, Some(100)));
        assert!(step.status.is_final() && !JobStatus::Running.is_final());
        assert_eq!(step.line.map(|l| l.text), Some("Done".into()));
        assert!(valid_job_id("job-12") && valid_job_id("a.b:c_d"));
        for bad in ["", "job 1", "job/1", "jöb", &"j".repeat(65)] {
            assert!(!valid_job_id(bad), "{bad:?}");
        }
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
