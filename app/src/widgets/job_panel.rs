//! The job panel: the latest jobs of an `events` topic with status, progress, summary, errors and
//! the full log on demand, and a detail view that follows one job's run live.

use super::frame::{Framed, WidgetFrame};
use super::job_detail::JobDetailView;
use super::job_log::log_line;
use crate::live::{job_board::JobBoard, use_topic};
use leptos::prelude::*;
use protocol::dashboard::{WidgetDef, WidgetMode};
use protocol::jobs::{Job, JobStatus};

#[component]
pub fn JobPanel(def: WidgetDef, mode: WidgetMode) -> AnyView {
    let feed = use_topic::<JobBoard>(&def.dom_id(), &def.topic, mode);
    // The job whose detail view is open.
    let open = RwSignal::new(None::<String>);
    let jobs = move || feed.data.with(|b| b.jobs().iter().map(|job| job_row(job.clone(), open)).collect_view());
    let topic = def.topic.clone();
    let detail = move || {
        open.get().map(|job_id| {
            let on_close = Callback::new(move |()| open.set(None));
            view! { <JobDetailView job_id topic=topic.clone() on_close/> }
        })
    };
    view! {
        <WidgetFrame framed=Framed::new(&def, feed)>
            {detail}
            <ul class="jobs">{jobs}</ul>
            <Show when=move || feed.data.with(|b| b.jobs().is_empty())>
                <p class="empty">"No jobs have run yet."</p>
            </Show>
        </WidgetFrame>
    }
    .into_any()
}

/// A progress bar's fill, `progress` per cent of its track. Scaled, not sized: the browser
/// animates a scale off the page's main thread, while a changing width laid out and repainted
/// the panel on every frame of the transition (about 6 % of a core on the demo dashboard).
pub(super) fn bar_style(progress: u8) -> String {
    format!("transform: scaleX({})", f64::from(progress.min(100)) / 100.0)
}

fn job_row(job: Job, open: RwSignal<Option<String>>) -> impl IntoView {
    let status = job.status.as_str();
    let progress = job.progress.unwrap_or(0);
    // The summary is the latest line; earlier errors are listed under it.
    let summary = job.summary().to_owned();
    let errors: Vec<String> = job.errors().map(|l| l.text.clone()).filter(|e| *e != summary).collect();
    let summary_class = if job.status == JobStatus::Failed { "job-summary job-failed-summary" } else { "job-summary" };
    view! {
        <li class=format!("job job-{status}") data-job-id=job.id.clone() data-status=status>
            <div class="job-head">
                <strong>{job.name.clone()}</strong>
                <span class=format!("job-status job-status-{status}")>{job.status.label()}</span>
                <button
                    class="button-quiet job-follow"
                    type="button"
                    aria-label=format!("Follow {} live", job.name)
                    on:click={
                        let id = job.id.clone();
                        move |_| open.set(Some(id.clone()))
                    }
                >
                    "Follow"
                </button>
            </div>
            <div
                class="progress"
                role="progressbar"
                aria-label=format!("{} progress", job.name)
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=progress
            >
                <span style=bar_style(progress)></span>
            </div>
            <p class=summary_class>{summary}</p>
            {(!errors.is_empty()).then(|| view! { <p class="job-errors">{errors.join(" · ")}</p> })}
            <details>
                <summary>{format!("Log ({} lines)", job.log.len())}</summary>
                <ol class="job-log">
                    {job.log.iter().map(log_line).collect_view()}
                </ol>
            </details>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::bar_style;

    #[test]
    fn a_bar_is_filled_by_scale_up_to_its_whole_track() {
        assert_eq!(bar_style(0), "transform: scaleX(0)");
        assert_eq!(bar_style(40), "transform: scaleX(0.4)");
        assert_eq!(bar_style(100), "transform: scaleX(1)");
        assert_eq!(bar_style(250), "transform: scaleX(1)", "never past the track");
    }
}
