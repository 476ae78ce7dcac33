//! Routed pages.

mod dashboard;
mod login;

pub use dashboard::{DEMO_KPI_TOPIC, DEMO_NOTIFICATIONS_TOPIC, DEMO_ORDERS_TOPIC, DashboardPage};
pub use login::{LOGIN_PATH, LoginPage};
