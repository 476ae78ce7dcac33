//! What a job's detail view shows, built from its SSE stream (`/api/v1/realtime/jobs/{jobId}`, see
//! docs/protocol.md): the job so far, then each step's progress, log line and error, and its end.
//! Pure, so the host tests cover it; the browser part only feeds it the stream's events.

use super::job_board::{Job, JobStatus, LOG_KEPT, LogLine};
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobDetail {
    /// `None` until the stream's snapshot arrived.
    pub job: Option<Job>,
    /// The stream said `end`: the job is over and nothing more comes.
    pub ended: bool,
    /// Error lines, as the stream flagged them: the latest [`LOG_KEPT`].
    pub errors: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    job_id: String,
    name: String,
    status: JobStatus,
    progress: Option<u8>,
    started: i64,
    updated: i64,
    log: Vec<LogLine>,
}

#[derive(Deserialize)]
struct Progress {
    status: JobStatus,
    progress: Option<u8>,
}

#[derive(Deserialize)]
struct ErrorLine {
    text: String,
}

impl JobDetail {
    /// Applies one event of the stream; events it does not know, or cannot read, change nothing.
    pub fn apply(&mut self, event: &str, data: &str) {
        match event {
            "snapshot" => {
                if let Ok(s) = serde_json::from_str::<Snapshot>(data) {
                    self.errors = s
                        .log
                        .iter()
                        .filter(|l| l.level == crate::protocol::Level::Error)
                        .map(|l| l.text.clone())
                        .collect();
                    self.job = Some(Job {
                        id: s.job_id,
                        name: s.name,
                        status: s.status,
                        progress: s.progress,
                        started: s.started,
                        updated: s.updated,
                        log: s.log,
                    });
                }
            }
            "progress" => {
                if let (Some(job), Ok(p)) = (self.job.as_mut(), serde_json::from_str::<Progress>(data)) {
                    job.status = p.status;
                    job.progress = p.progress.or(job.progress);
                }
            }
            "log" => {
                if let (Some(job), Ok(line)) = (self.job.as_mut(), serde_json::from_str::<LogLine>(data)) {
                    job.updated = line.ts;
                    job.log.push(line);
                    let excess = job.log.len().saturating_sub(LOG_KEPT);
                    job.log.drain(..excess);
                }
            }
            "error" => {
                if let Ok(e) = serde_json::from_str::<ErrorLine>(data) {
                    // A job that fails in a loop for hours must not grow the page without end.
                    self.errors.push(e.text);
                    let excess = self.errors.len().saturating_sub(LOG_KEPT);
                    self.errors.drain(..excess);
                }
            }
            "end" => {
                self.ended = true;
                if let (Some(job), Ok(p)) = (self.job.as_mut(), serde_json::from_str::<Progress>(data)) {
                    job.status = p.status;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_followed_from_its_snapshot_to_its_end() {
        let mut detail = JobDetail::default();
        detail.apply("progress", r#"{"status":"running","progress":10}"#);
        assert!(detail.job.is_none(), "nothing before the snapshot");
        detail.apply(
            "snapshot",
            r#"{"jobId":"job-4","name":"Export","status":"running","progress":20,"summary":"Reading",
                "started":1,"updated":2,"log":[{"ts":1,"level":"info","text":"Started"},{"ts":2,"level":"info","text":"Reading"}]}"#,
        );
        detail.apply("progress", r#"{"jobId":"job-4","status":"failed","progress":60,"summary":"Upstream 503"}"#);
        detail.apply("log", r#"{"ts":9,"level":"error","text":"Upstream 503"}"#);
        detail.apply("error", r#"{"ts":9,"text":"Upstream 503"}"#);
        assert!(!detail.ended);
        detail.apply("end", r#"{"jobId":"job-4","status":"failed","summary":"Upstream 503"}"#);
        let job = detail.job.as_ref().unwrap();
        assert_eq!((job.status, job.progress, job.summary()), (JobStatus::Failed, Some(60), "Upstream 503"));
        assert_eq!(job.log.len(), 3);
        assert_eq!(detail.errors, ["Upstream 503"]);
        assert!(detail.ended);
        detail.apply("heartbeat", "{}");
        detail.apply("log", "not json");
        assert_eq!(detail.job.as_ref().unwrap().log.len(), 3);
    }

    #[test]
    fn error_lines_kept_are_bounded_like_the_log() {
        let mut detail = JobDetail::default();
        for n in 0..3 * LOG_KEPT {
            detail.apply("error", &format!("{{\"text\":\"failure {n}\"}}"));
        }
        assert_eq!(detail.errors.len(), LOG_KEPT);
        assert_eq!(detail.errors.last().map(String::as_str), Some(format!("failure {}", 3 * LOG_KEPT - 1).as_str()));
    }
}
