//! What a job's detail view shows, built from its SSE stream (`/api/v1/realtime/jobs/{jobId}`, see
//! docs/protocol.md): the job so far, then each step's progress, log line and error, and its end.
//! Pure, so the host tests cover it; the browser part only feeds it the stream's events.

use protocol::close::Disconnect;
use protocol::jobs::{Job, JobEnd, JobProgress, JobSnapshot, LOG_KEPT, LogLine, StepError, event};
use protocol::sse;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobDetail {
    /// `None` until the stream's snapshot arrived.
    pub job: Option<Job>,
    /// The stream said `end`: the job is over and nothing more comes.
    pub ended: bool,
    /// The server closed the stream for a reason that keeps the browser away (the session
    /// ended, live updates were turned off): nothing more comes either.
    pub closed: Option<Disconnect>,
    /// Error lines, as the stream flagged them: the latest [`LOG_KEPT`].
    pub errors: Vec<String>,
}

impl JobDetail {
    /// Applies one event of the stream; events it does not know, or cannot read, change nothing.
    pub fn apply(&mut self, name: &str, data: &str) {
        match name {
            event::SNAPSHOT => {
                if let Ok(snapshot) = serde_json::from_str::<JobSnapshot>(data) {
                    let job = snapshot.into_job();
                    self.errors = job.errors().map(|l| l.text.clone()).collect();
                    self.job = Some(job);
                }
            }
            event::PROGRESS => {
                if let (Some(job), Ok(p)) = (self.job.as_mut(), serde_json::from_str::<JobProgress>(data)) {
                    job.status = p.status;
                    job.progress = p.progress.or(job.progress);
                }
            }
            event::LOG => {
                if let (Some(job), Ok(line)) = (self.job.as_mut(), serde_json::from_str::<LogLine>(data)) {
                    job.updated = line.ts;
                    job.log.push(line);
                    let excess = job.log.len().saturating_sub(LOG_KEPT);
                    job.log.drain(..excess);
                }
            }
            event::STEP_ERROR => {
                if let Ok(e) = serde_json::from_str::<StepError>(data) {
                    // A job that fails in a loop for hours must not grow the page without end.
                    self.errors.push(e.text);
                    let excess = self.errors.len().saturating_sub(LOG_KEPT);
                    self.errors.drain(..excess);
                }
            }
            event::END => {
                self.ended = true;
                if let (Some(job), Ok(end)) = (self.job.as_mut(), serde_json::from_str::<JobEnd>(data)) {
                    job.status = end.status;
                }
            }
            sse::event::CLOSE => {
                if let Ok(disconnect) = serde_json::from_str::<Disconnect>(data)
                    && !disconnect.reconnect
                {
                    self.closed = Some(disconnect);
                }
            }
            _ => {}
        }
    }

    /// Nothing more will come: the browser must not reconnect.
    pub fn is_over(&self) -> bool {
        self.ended || self.closed.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::jobs::JobStatus;

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
        detail.apply("step_error", r#"{"ts":9,"text":"Upstream 503"}"#);
        assert!(!detail.ended);
        detail.apply("end", r#"{"jobId":"job-4","status":"failed","summary":"Upstream 503"}"#);
        let job = detail.job.as_ref().unwrap();
        assert_eq!((job.status, job.progress, job.summary()), (JobStatus::Failed, Some(60), "Upstream 503"));
        assert_eq!(job.log.len(), 3);
        assert_eq!(detail.errors, ["Upstream 503"]);
        assert!(detail.ended);
        detail.apply("heartbeat", "{}");
        detail.apply("error", r#"{"ts":9,"text":"the browser's own error event"}"#);
        detail.apply("log", "not json");
        assert_eq!(detail.job.as_ref().unwrap().log.len(), 3);
    }

    #[test]
    fn error_lines_kept_are_bounded_like_the_log() {
        let mut detail = JobDetail::default();
        for n in 0..3 * LOG_KEPT {
            detail.apply("step_error", &format!("{{\"ts\":{n},\"text\":\"failure {n}\"}}"));
        }
        assert_eq!(detail.errors.len(), LOG_KEPT);
        assert_eq!(detail.errors.last().map(String::as_str), Some(format!("failure {}", 3 * LOG_KEPT - 1).as_str()));
    }

    #[test]
    fn a_close_that_keeps_the_browser_away_ends_the_view_and_one_that_does_not_leaves_it() {
        let mut detail = JobDetail::default();
        detail.apply("close", r#"{"code":1001,"reason":"server shutting down","reconnect":true}"#);
        assert!(!detail.is_over(), "the browser reconnects by itself");
        detail.apply("close", r#"{"code":4401,"reason":"logged out","reconnect":false}"#);
        assert_eq!(detail.closed.as_ref().map(|d| d.code), Some(4401));
        assert!(detail.is_over());
    }
}
