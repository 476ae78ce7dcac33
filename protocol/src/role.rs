//! A user's role in their tenant. In the protocol because topic rules (see [`crate::topic_rules`])
//! name roles, and the admin page edits those rules in the browser.

use serde::{Deserialize, Serialize};

/// A user's role in their tenant: what they may see and change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches dashboards.
    Viewer,
    /// Also edits dashboards and the tenant's settings, and reads the audit log.
    Admin,
    /// A wall display (see [`crate::display`]): not a person; reads the dashboards it was made
    /// for, and nothing else, and changes nothing.
    Display,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Admin, Role::Display];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
            Role::Display => "display",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|role| role.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
