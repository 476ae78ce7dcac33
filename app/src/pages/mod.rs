//! Routed pages.

mod dashboard;

pub use dashboard::{DEMO_ORDERS_TOPIC, DashboardPage};
