//! Dashboard widgets. Each follows one topic through [`use_topic`](crate::live::use_topic) and draws
//! it inside a [`WidgetFrame`](frame::WidgetFrame).

mod active_users;
mod document_table;
mod flash;
pub mod frame;
mod job_detail;
mod job_log;
mod job_panel;
mod kpi_tiles;
mod notification_feed;
mod series_chart;
mod threshold_view;

use leptos::prelude::*;
use protocol::dashboard::{WidgetDef, WidgetKind, WidgetMode};
use protocol::thresholds::Threshold;

/// The widget for a definition, starting in `mode`.
pub fn widget_view(def: WidgetDef, mode: WidgetMode, thresholds: Memo<Vec<Threshold>>) -> AnyView {
    match def.kind {
        WidgetKind::LineChart | WidgetKind::BarChart => {
            view! { <series_chart::SeriesChart def mode thresholds/> }.into_any()
        }
        WidgetKind::KpiTiles => view! { <kpi_tiles::KpiTiles def mode thresholds/> }.into_any(),
        WidgetKind::NotificationFeed => view! { <notification_feed::NotificationFeed def mode/> }.into_any(),
        WidgetKind::JobPanel => view! { <job_panel::JobPanel def mode/> }.into_any(),
        WidgetKind::ActiveUsers => view! { <active_users::ActiveUsers def mode/> }.into_any(),
        WidgetKind::DocumentTable => view! { <document_table::DocumentTable def mode/> }.into_any(),
    }
}
