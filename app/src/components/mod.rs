//! Small pieces of page chrome shared by every page.

mod status_pill;
mod user_menu;

pub use status_pill::StatusPill;
pub use user_menu::UserMenu;
