//! Dashboard widgets, each bound to one topic.

mod kpi_tiles;
mod line_chart;

pub use kpi_tiles::KpiTiles;
pub use line_chart::LineChart;
