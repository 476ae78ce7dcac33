//! Dashboard widgets, each bound to one topic.

mod line_chart;

pub use line_chart::LineChart;
