//! `GET /api/v1/realtime/jobs/{jobId}`: one job's run as Server-Sent Events, for a job panel's
//! detail view: what it did so far, then its progress, log lines and errors as they happen, ending
//! with its final status.
//!
//! A job is the run of `job` events sharing `data.jobId` in one of the tenant's `events` topics
//! (`?topic=`, by default [`JOBS_TOPIC`]); see [`JobStep`]. The stream subscribes to that topic like
//! a widget would and passes on only that job's steps. Admission is the dashboard stream's (the
//! per-user connection limit included), and a user may have at most
//! `LIVEDASH_MAX_JOB_STREAMS_PER_USER` streams of one job. A topic the tenant's topic rules do not
//! let the user read is refused with 403 before the stream opens; rules that change while it is
//! open end it with close code 4406.
//!
//! Events ([`protocol::jobs::event`]): `snapshot` (the job so far), then per step `progress`, `log`
//! (when the step has a line), `step_error` (when that line is an error), and finally `end`. Each carries the position of the step in
//! the topic as its `id:`; `Last-Event-ID` resumes after it.

use super::{
    admission::{self, Refusal},
    endings::Ending,
    live_connection::{FollowError, LiveConnection},
    sse_format,
    sse_stream::{EventStream, Lifetime, Wake},
};
use crate::connections::job_streams::JobStreamSlot;
use crate::extract::{ApiPath, ApiQuery};
use crate::outbox::Frame;
use crate::permissions::{self, mask::Hidden};
use crate::topic_name::{TopicKey, TopicName};
use crate::{AppState, broker::ReadFrom, client_addr::ClientAddr, http_error::ApiError, listener::Hangup, telemetry};
use axum::{
    extract::{Extension, State},
    http::HeaderMap,
    response::Response,
};
use protocol::ErrorBody;
use protocol::close::{Disconnect, LIMIT, TOPIC_FORBIDDEN};
use protocol::jobs::{Job, JobEnd, JobProgress, JobSnapshot, JobStep, MAX_JOB_ID_LEN, StepError, event, valid_job_id};
use protocol::topics::JOBS_TOPIC;
use protocol::{ControlMessage, Item, Level, ServerMessage};
use serde::Deserialize;
use std::{collections::VecDeque, sync::Arc};

/// The widget id the stream subscribes under.
const WIDGET: &str = "job";

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct JobParams {
    /// The `events` topic the job runs in; [`JOBS_TOPIC`] when absent.
    topic: Option<String>,
    /// `Last-Event-ID` for clients that open a new `EventSource` (which cannot set headers).
    last_event_id: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/realtime/jobs/{job}", tag = "live", params(("job" = String, Path, description = "The job's id (`data.jobId` of its events)"), JobParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The last event id this client saw")),
    description = "One job's run as Server-Sent Events, ending with its final status (see docs/protocol.md).",
    responses(
        (status = 200, description = "The event stream", body = String, content_type = "text/event-stream"),
        (status = 400, description = "A malformed job id or topic", body = ErrorBody),
        (status = 403, description = "A foreign `Origin`, the live mode, or topic rules that keep the topic from this user", body = ErrorBody),
        (status = 429, description = "Too many streams of this job for this user, or too many connections", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    )
)]
pub async fn job(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    ApiPath(job): ApiPath<String>,
    ApiQuery(params): ApiQuery<JobParams>,
    hangup: Option<Extension<Hangup>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let headers = &headers;
    if !valid_job_id(&job) {
        metrics::counter!(telemetry::SSE_ERRORS, "reason" => "bad_job_id").increment(1);
        let message = format!("a job id is 1 to {MAX_JOB_ID_LEN} characters of A-Z a-z 0-9 - _ . :");
        return Err(ApiError { field: Some("jobId".into()), ..ApiError::bad_request(message) });
    }
    let session = admission::admit_stream(&state, peer, headers).await?;
    let name = TopicName::parse(params.topic.as_deref().unwrap_or(JOBS_TOPIC))
        .map_err(|e| ApiError { field: Some("topic".into()), ..ApiError::bad_request(e.to_string()) })?;
    let rules = state.permissions.of(&session.user.tenant).await.map_err(ApiError::internal)?;
    let hidden = match permissions::check_session(&rules, &session, &name) {
        Ok(hidden) => hidden,
        Err(forbidden) => {
            let refusal = Refusal::new(403, forbidden.to_string(), "topic_rules");
            return Err(admission::refuse_stream(&state, Some(&session), peer, &refusal));
        }
    };
    let topic = TopicKey::new(session.user.tenant.clone(), name);
    state.engine.load_current(topic.clone()).await;
    if !job_exists(&state, &topic, hidden.as_deref(), &job) {
        return Err(ApiError::not_found("no such job"));
    }
    let max = state.config.max_job_streams_per_user;
    let Some(slot) = state.job_streams.take(session.user.id, &topic, &job, max) else {
        let refusal = Refusal {
            max: Some(max as u64),
            ..Refusal::new(LIMIT, format!("at most {max} streams of one job per user"), "job_streams_per_user")
        };
        return Err(admission::refuse_stream(&state, Some(&session), peer, &refusal));
    };
    let detail = format!("sse for job {job} of {} from {peer}", topic.name);
    let live = LiveConnection::open(&state, session, headers, "job", detail)
        .await
        .map_err(|(session, r)| admission::refuse_stream(&state, Some(&session), peer, &r))?;
    let header = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let resume = header.or(params.last_event_id.as_deref()).filter(|t| !t.is_empty()).map(str::to_owned);
    if resume.is_some() {
        metrics::counter!(telemetry::SSE_RECONNECTIONS, "stream" => "job").increment(1);
    }
    let (events, response) = EventStream::open(&state.config, "job", &live, hangup.map(|Extension(h)| h));
    let lifetime = Lifetime::new(&state.config, &live);
    let stream = JobStream { job, topic, live, events, progress: None, _slot: slot };
    tokio::spawn(stream.run(resume, lifetime));
    Ok(response)
}

/// Whether the topic's current state, as the user may see it, holds a step of `job`.
fn job_exists(state: &AppState, topic: &TopicKey, hidden: Option<&Hidden>, job: &str) -> bool {
    let Some(read) = state.broker.read(topic, &Arc::from(WIDGET), hidden, ReadFrom::Start, 0) else { return false };
    read.frames.into_iter().any(|frame| match frame {
        Frame::Snapshot { text, .. } => steps_of(snapshot_items(&text), job).next().is_some(),
        _ => false,
    })
}

struct JobStream {
    job: String,
    topic: TopicKey,
    /// Its seat, its one subscription and what ends it.
    live: LiveConnection,
    events: EventStream,
    /// The job as sent so far.
    progress: Option<Job>,
    _slot: JobStreamSlot,
}

impl JobStream {
    async fn run(mut self, resume: Option<String>, lifetime: Lifetime) {
        let from = ReadFrom::token(resume.as_deref());
        let ending = match self.live.follow(WIDGET.into(), self.topic.clone(), from, ()) {
            Ok(_) => self.serve(lifetime).await,
            Err(FollowError::Forbidden(e)) => Ending::Close(Disconnect::new(TOPIC_FORBIDDEN, e.to_string())),
            Err(FollowError::Broker(e)) => Ending::Close(Disconnect::new(LIMIT, e.to_string())),
        };
        self.events.end(ending).await;
        self.live.close().await;
    }

    async fn serve(&mut self, mut lifetime: Lifetime) -> Ending {
        loop {
            match lifetime.next(&self.events, &mut self.live).await {
                Wake::Frames => {
                    let batch = self.live.take();
                    if let Err(ending) = self.write(batch.frames).await {
                        return ending;
                    }
                    self.live.resync(batch.lagging);
                }
                Wake::HeartbeatSent => {}
                Wake::Ended(ending) => return ending,
            }
        }
    }

    /// Writes the job's steps among `frames` as one chunk; ends the stream after the final one.
    async fn write(&mut self, frames: VecDeque<Frame>) -> Result<(), Ending> {
        let mut out = String::new();
        let mut sent = 0;
        // Every event of the job's topic is handled here, whether it is this job's step (written)
        // or another job's (nothing to write): all of them reached their subscriber.
        let events = frames.iter().filter(|f| f.is_live_event()).count();
        for frame in frames {
            if self.progress.as_ref().is_some_and(|job| job.status.is_final()) {
                break;
            }
            match frame {
                Frame::Snapshot { position, text, .. } => {
                    // The job so far (again, after a gap).
                    let mut job = None::<Job>;
                    for (step, ts) in steps_of(snapshot_items(&text), &self.job) {
                        job.get_or_insert_with(|| Job::new(&step, ts)).record(step, ts);
                    }
                    if let Some(job) = &job {
                        sse_format::push_event(
                            &mut out,
                            event::SNAPSHOT,
                            Some(&position),
                            &to_json(&JobSnapshot::of(job)),
                        );
                        sent += 1;
                    }
                    self.progress = job;
                }
                Frame::Update { text, position, .. } => {
                    let steps: Vec<_> = steps_of(update_items(&text), &self.job).collect();
                    for (step, ts) in steps {
                        sent += self.step(&mut out, &position, step, ts);
                    }
                }
                Frame::Refused { text, .. } => return Err(Ending::Close(forbidden(&text))),
                Frame::Gap { .. } | Frame::Whole(_) => {} // the snapshot that follows says it all
            }
        }
        let finished = self.progress.as_ref().filter(|job| job.status.is_final());
        if let Some(job) = finished {
            sse_format::push_event(&mut out, event::END, None, &to_json(&JobEnd::of(job)));
        }
        let finished = finished.is_some();
        if !out.is_empty() {
            self.events.send(out).await?;
            self.events.count_sent(sent);
        }
        telemetry::event_deliveries("delivered", events);
        if finished { Err(Ending::Finished) } else { Ok(()) }
    }

    /// Writes one step's events; returns how many.
    fn step(&mut self, out: &mut String, position: &str, step: JobStep, ts: i64) -> u64 {
        let line = step.line.clone();
        let job = self.progress.get_or_insert_with(|| Job::new(&step, ts));
        job.record(step, ts);
        sse_format::push_event(out, event::PROGRESS, Some(position), &to_json(&JobProgress::of(job)));
        let Some(line) = line else { return 1 };
        sse_format::push_event(out, event::LOG, Some(position), &to_json(&line));
        if line.level != Level::Error {
            return 2;
        }
        let error = StepError { ts: line.ts, text: line.text };
        sse_format::push_event(out, event::STEP_ERROR, Some(position), &to_json(&error));
        3
    }
}

/// The close that ends a stream whose topic the rules no longer let its user read, with the
/// reason its `forbidden` error gives.
fn forbidden(error: &str) -> Disconnect {
    let reason = match serde_json::from_str(error) {
        Ok(ServerMessage::Control(ControlMessage::Error { message, .. })) => message,
        _ => "the topic rules no longer let you read this topic".to_owned(),
    };
    Disconnect::new(TOPIC_FORBIDDEN, reason)
}

fn to_json(payload: &impl serde::Serialize) -> String {
    serde_json::to_string(payload).expect("job stream payloads always serialise")
}

fn snapshot_items(text: &str) -> Vec<Item> {
    match serde_json::from_str(text) {
        Ok(ServerMessage::Control(ControlMessage::Snapshot { series, .. })) => series,
        _ => Vec::new(),
    }
}

fn update_items(text: &str) -> Vec<Item> {
    match serde_json::from_str(text) {
        Ok(ServerMessage::Update(update)) => update.series,
        _ => Vec::new(),
    }
}

/// The steps of `job` among `items`, with their times.
fn steps_of(items: Vec<Item>, job: &str) -> impl Iterator<Item = (JobStep, i64)> + '_ {
    items.into_iter().filter_map(move |item| match item {
        Item::Event(event) => JobStep::of(&event).filter(|s| s.job_id == job).map(|s| (s, event.ts)),
        _ => None,
    })
}
