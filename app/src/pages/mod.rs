//! Routed pages.

mod dashboard;
mod display;
mod live_shell;
mod login;

pub use dashboard::{DEMO_KPI_TOPIC, DEMO_ORDERS_TOPIC, DashboardPage};
pub use display::DisplayPage;
pub use live_shell::LiveShell;
pub use login::LoginPage;
