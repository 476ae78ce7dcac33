//! Jobs: a run of `job` events sharing `data.jobId` in an `events` topic (by default
//! [`JOBS_TOPIC`](crate::topics::JOBS_TOPIC)). Each event's `data.status` (`running`, `succeeded`,
//! `failed`) and `data.progress` (0–100) update its job, and its body is a line of the job's log.
//!
//! The fold from steps to a [`Job`] is here because both sides make it: the server's job stream
//! (`GET /api/v1/realtime/jobs/{jobId}`) and the browser's job panel. So are the stream's events
//! ([`event`]) and their payloads.

use crate::data::{Event, Level};
use serde::{Deserialize, Serialize};

/// Longest job id (ids are 1–64 characters of `A-Z a-z 0-9 - _ . :`).
pub const MAX_JOB_ID_LEN: usize = 64;

/// Whether `id` can name a job.
pub fn valid_job_id(id: &str) -> bool {
    (1..=MAX_JOB_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

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

    /// The status as on the wire; also its CSS class suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
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

/// The names of a job stream's events. `heartbeat` and `close` are the dashboard stream's
/// ([`sse::event`](crate::sse::event)).
pub mod event {
    /// [`JobSnapshot`](super::JobSnapshot): the job so far (first, and again after a gap).
    pub const SNAPSHOT: &str = "snapshot";
    /// [`JobProgress`](super::JobProgress): per step.
    pub const PROGRESS: &str = "progress";
    /// [`LogLine`](super::LogLine): per step that has a line.
    pub const LOG: &str = "log";
    /// [`StepError`](super::StepError): per step whose line is an error. Not `error`, which an
    /// `EventSource` fires by itself when its connection fails.
    pub const STEP_ERROR: &str = "step_error";
    /// [`JobEnd`](super::JobEnd): the job has ended; nothing follows.
    pub const END: &str = "end";
}

/// Every data event of a job stream.
pub const JOB_EVENTS: [&str; 5] = [event::SNAPSHOT, event::PROGRESS, event::LOG, event::STEP_ERROR, event::END];

/// The data of a job stream's `snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSnapshot {
    pub job_id: String,
    pub name: String,
    pub status: JobStatus,
    pub progress: Option<u8>,
    pub summary: String,
    pub started: i64,
    pub updated: i64,
    /// The latest [`LOG_KEPT`] lines.
    pub log: Vec<LogLine>,
}

impl JobSnapshot {
    pub fn of(job: &Job) -> Self {
        Self {
            job_id: job.id.clone(),
            name: job.name.clone(),
            status: job.status,
            progress: job.progress,
            summary: job.summary().to_owned(),
            started: job.started,
            updated: job.updated,
            log: job.log.clone(),
        }
    }

    pub fn into_job(self) -> Job {
        Job {
            id: self.job_id,
            name: self.name,
            status: self.status,
            progress: self.progress,
            started: self.started,
            updated: self.updated,
            log: self.log,
        }
    }
}

/// The data of a job stream's `progress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    pub job_id: String,
    pub status: JobStatus,
    pub progress: Option<u8>,
    pub summary: String,
}

impl JobProgress {
    pub fn of(job: &Job) -> Self {
        Self { job_id: job.id.clone(), status: job.status, progress: job.progress, summary: job.summary().to_owned() }
    }
}

/// The data of a job stream's `step_error`: the text of a step's error line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    pub ts: i64,
    pub text: String,
}

/// The data of a job stream's `end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEnd {
    pub job_id: String,
    pub status: JobStatus,
    pub summary: String,
}

impl JobEnd {
    pub fn of(job: &Job) -> Self {
        Self { job_id: job.id.clone(), status: job.status, summary: job.summary().to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step_event(id: &str, status: &str, progress: u64, level: Level, line: &str) -> Event {
        Event {
            id: format!("{id}-{line}"),
            ts: 1,
            event_type: "job".into(),
            level,
            title: format!("Job {id}"),
            body: Some(line.into()),
            severity: None,
            scheduled_at: None,
            data: json!({"jobId": id, "status": status, "progress": progress}).as_object().cloned(),
        }
    }

    #[test]
    fn a_step_reads_its_job_status_progress_and_line_and_job_ids_are_checked() {
        let step = JobStep::of(&step_event("j-1", "succeeded", 140, Level::Success, "Done")).unwrap();
        assert_eq!((step.job_id.as_str(), step.status, step.progress), ("j-1", JobStatus::Succeeded, Some(100)));
        assert!(step.status.is_final() && !JobStatus::Running.is_final());
        assert_eq!(step.line.map(|l| l.text), Some("Done".into()));
        assert!(valid_job_id("job-12") && valid_job_id("a.b:c_d"));
        for bad in ["", "job 1", "job/1", "jöb", &"j".repeat(65)] {
            assert!(!valid_job_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_job_keeps_its_latest_lines_and_the_snapshot_carries_them() {
        let first = JobStep::of(&step_event("j", "running", 0, Level::Info, "0")).unwrap();
        let mut job = Job::new(&first, 1);
        for n in 0..LOG_KEPT + 5 {
            job.record(JobStep::of(&step_event("j", "running", 1, Level::Info, &n.to_string())).unwrap(), 2);
        }
        assert_eq!(job.log.len(), LOG_KEPT);
        let json = serde_json::to_value(JobSnapshot::of(&job)).unwrap();
        assert_eq!(json["jobId"], "j");
        assert_eq!(json["summary"], (LOG_KEPT + 4).to_string());
        let back: JobSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back.into_job(), job);
    }
}
