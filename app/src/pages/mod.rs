//! Routed pages.

mod dashboard;
mod live_shell;
mod login;

pub use dashboard::{DEMO_KPI_TOPIC, DEMO_ORDERS_TOPIC, DashboardPage};
pub use live_shell::LiveShell;
pub use login::LoginPage;
