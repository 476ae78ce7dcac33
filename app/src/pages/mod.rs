//! Routed pages.

mod dashboard;
mod live_shell;
mod login;

pub use dashboard::{DEMO_KPI_TOPIC, DEMO_ORDERS_TOPIC, DashboardPage};
pub use live_shell::{LiveShell, NOTIFICATIONS_TOPIC};
pub use login::{LOGIN_PATH, LoginPage, after_sign_in};
