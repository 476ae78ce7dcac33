//! Small pieces of page chrome shared by every page.

mod live_controls;
mod live_mode_control;
mod notification_center;
mod status_pill;
mod user_menu;

pub use live_controls::LiveControls;
pub use live_mode_control::LiveModeControl;
pub use notification_center::NotificationCenter;
pub use status_pill::StatusPill;
pub use user_menu::UserMenu;
