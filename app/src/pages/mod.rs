//! Routed pages.

mod dashboard;
mod login;

pub use dashboard::{DEMO_ORDERS_TOPIC, DashboardPage};
pub use login::{LOGIN_PATH, LoginPage};
