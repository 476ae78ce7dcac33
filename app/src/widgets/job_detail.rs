//! A job's detail view inside the job panel: its run as it happens, from the job's own SSE stream
//! (`/api/v1/realtime/jobs/{jobId}`), until it ends. The browser's `EventSource` reconnects by
//! itself after a drop and resumes from `Last-Event-ID`, which the stream honours.

use super::job_log::log_line;
use super::job_panel::bar_style;
use crate::live::job_detail::JobDetail;
use leptos::prelude::*;
use protocol::jobs::JobStatus;

/// How the view's stream stands.
// The server only ever renders `Connecting`; the browser moves it on.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Connecting,
    Following,
    Reconnecting,
    /// The server refused it (the job is gone from the topic, or a limit).
    Unavailable,
    Ended,
    /// The server ended the stream for a reason that keeps the browser away (the session ended,
    /// live updates were turned off).
    Closed,
}

#[component]
pub fn JobDetailView(job_id: String, topic: String, on_close: Callback<()>) -> impl IntoView {
    let detail = RwSignal::new(JobDetail::default());
    let stream_state = RwSignal::new(StreamState::Connecting);
    #[cfg(feature = "hydrate")]
    {
        let stream = browser::follow(&job_id, &topic, detail, stream_state);
        let stream = send_wrapper::SendWrapper::new(stream);
        on_cleanup(move || drop(stream.take()));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = &topic;

    let title = job_id.clone();
    let name = move || detail.with(|d| d.job.as_ref().map_or_else(|| title.clone(), |j| j.name.clone()));
    let status = move || detail.with(|d| d.job.as_ref().map(|j| j.status));
    let progress = move || detail.with(|d| d.job.as_ref().and_then(|j| j.progress).unwrap_or(0));
    let summary = move || detail.with(|d| d.job.as_ref().map(|j| j.summary().to_owned()).unwrap_or_default());
    let footer = move || match (stream_state.get(), status()) {
        (StreamState::Ended, Some(status)) => format!("Finished: {}", status.label()),
        (StreamState::Ended, None) | (StreamState::Following, _) => "Following live".to_owned(),
        (StreamState::Connecting, _) => "Connecting…".to_owned(),
        (StreamState::Reconnecting, _) => "Connection lost, reconnecting…".to_owned(),
        (StreamState::Unavailable, _) => "This job's run is no longer available".to_owned(),
        (StreamState::Closed, _) => detail
            .with(|d| d.closed.as_ref().map_or_else(String::new, |c| format!("Live updates stopped: {}", c.reason))),
    };
    let slug = move || status().unwrap_or(JobStatus::Running).as_str();
    let log = move || detail.with(|d| d.job.iter().flat_map(|j| j.log.iter()).map(log_line).collect_view());
    let errors = move || detail.with(|d| d.errors.clone());
    view! {
        <section class="job-detail" aria-label=format!("Job {job_id}") data-job-id=job_id.clone() data-link=move || format!("{:?}", stream_state.get()).to_lowercase()>
            <div class="job-head">
                <strong>{name}</strong>
                <span class=move || format!("job-status job-status-{}", slug())>{move || status().map_or("…", |s| s.label())}</span>
                <button class="button-quiet" type="button" aria-label="Close job details" on:click=move |_| on_close.run(())>"×"</button>
            </div>
            <div class="progress" role="progressbar" aria-label="Job progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow=progress>
                <span style=move || bar_style(progress())></span>
            </div>
            <p class="job-summary">{summary}</p>
            <Show when=move || !errors().is_empty()>
                <p class="job-errors">{move || errors().join(" · ")}</p>
            </Show>
            <ol class="job-log">{log}</ol>
            <p class="job-detail-link">{footer}</p>
        </section>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::StreamState;
    use crate::live::job_detail::JobDetail;
    use leptos::prelude::*;
    use wasm_bindgen::{JsCast, closure::Closure};
    use web_sys::{Event, EventSource, MessageEvent};

    /// The job's stream and its callbacks; dropping it closes the stream.
    pub struct Stream {
        source: EventSource,
        _event: Closure<dyn FnMut(MessageEvent)>,
        _open: Closure<dyn FnMut(Event)>,
        _error: Closure<dyn FnMut(Event)>,
    }

    impl Drop for Stream {
        fn drop(&mut self) {
            self.source.close();
        }
    }

    pub fn follow(
        job: &str,
        topic: &str,
        detail: RwSignal<JobDetail>,
        stream_state: RwSignal<StreamState>,
    ) -> Option<Stream> {
        let params = web_sys::UrlSearchParams::new().ok()?;
        params.append("topic", topic);
        let url = format!("/api/v1/realtime/jobs/{job}?{}", String::from(params.to_string()));
        let source = crate::http::event_source(&url)?;
        let event = Closure::<dyn FnMut(MessageEvent)>::new({
            let source = source.clone();
            move |event: MessageEvent| {
                let name = event.type_();
                let data = event.data().as_string().unwrap_or_default();
                detail.update(|d| d.apply(&name, &data));
                if detail.with_untracked(JobDetail::is_over) {
                    // Nothing more comes: keep the EventSource from reconnecting.
                    source.close();
                    stream_state.set(if detail.with_untracked(|d| d.ended) {
                        StreamState::Ended
                    } else {
                        StreamState::Closed
                    });
                }
            }
        });
        for name in protocol::jobs::JOB_EVENTS.into_iter().chain([protocol::sse::event::CLOSE]) {
            let _ = source.add_event_listener_with_callback(name, event.as_ref().unchecked_ref());
        }
        let open = Closure::<dyn FnMut(Event)>::new(move |_| stream_state.set(StreamState::Following));
        let error = Closure::<dyn FnMut(Event)>::new({
            let source = source.clone();
            move |_| {
                if matches!(stream_state.get_untracked(), StreamState::Ended | StreamState::Closed) {
                    return;
                }
                // CLOSED: the server refused it; otherwise the browser is reconnecting.
                stream_state.set(if source.ready_state() == EventSource::CLOSED {
                    StreamState::Unavailable
                } else {
                    StreamState::Reconnecting
                });
            }
        });
        source.set_onopen(Some(open.as_ref().unchecked_ref()));
        source.set_onerror(Some(error.as_ref().unchecked_ref()));
        Some(Stream { source, _event: event, _open: open, _error: error })
    }
}
