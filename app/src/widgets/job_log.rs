//! How a line of a job's log looks, in the job panel's list and in a job's detail view alike.

use crate::live::documents::clock_time;
use leptos::prelude::*;
use protocol::jobs::LogLine;

/// One line of a job's log.
pub fn log_line(line: &LogLine) -> impl IntoView + use<> {
    view! {
        <li class=format!("level-{}", line.level.as_str())>
            <time>{clock_time(line.ts)}</time>
            " "
            {line.text.clone()}
        </li>
    }
}
