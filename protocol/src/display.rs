//! Wall displays: a screen in an operations room that shows one dashboard, or a rotation of
//! several, day and night, without anyone signed in on it. An admin makes a display and gets a link
//! with a secret (shown once); the screen trades the secret for a display session that can only
//! read those dashboards, has no expiry of its own, and ends when the display is revoked.

use serde::{Deserialize, Serialize};

/// Most dashboards one display rotates through.
pub const MAX_DASHBOARDS: usize = 12;
/// Most displays a tenant has (revoked ones included: they are kept for the record).
pub const MAX_DISPLAYS: usize = 200;
/// A display's name, in characters.
pub const MAX_NAME: usize = 80;
/// Seconds each dashboard of a rotation shows; the default, and the bounds.
pub const DEFAULT_ROTATE_SECS: u32 = 30;
pub const MIN_ROTATE_SECS: u32 = 5;
pub const MAX_ROTATE_SECS: u32 = 3600;
/// After this long without fresh data a display says so across the screen.
pub const DEFAULT_STALE_SECS: u32 = 60;

/// How a display is lit: by its own choice, not the screen's system setting (a wall screen's
/// browser seldom has one worth following), unless asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DisplayTheme {
    #[default]
    Dark,
    Light,
    System,
}

impl DisplayTheme {
    pub const ALL: [DisplayTheme; 3] = [DisplayTheme::Dark, DisplayTheme::Light, DisplayTheme::System];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|theme| theme.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DisplayTheme::Dark => "dark",
            DisplayTheme::Light => "light",
            DisplayTheme::System => "system",
        }
    }
}

/// Body of `POST /api/admin/displays`, and of `PATCH /api/admin/displays/{id}` with every field
/// optional ([`DisplayEdit`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"name": "Ops wall", "dashboards": [1, 2], "rotateSecs": 30, "theme": "dark"}))
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDisplay {
    /// 1 to 80 characters, no control characters.
    pub name: String,
    /// The dashboards it shows, in the order it rotates through them: 1 to 12, each once.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 12))]
    pub dashboards: Vec<i64>,
    /// Seconds each dashboard shows before the next, 5 to 3600.
    #[serde(default = "default_rotate")]
    #[cfg_attr(feature = "openapi", schema(default = default_rotate, minimum = 5, maximum = 3600))]
    pub rotate_secs: u32,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = DisplayTheme::default))]
    pub theme: DisplayTheme,
}

fn default_rotate() -> u32 {
    DEFAULT_ROTATE_SECS
}

/// Body of `PATCH /api/admin/displays/{id}`: the settings to change, as in `NewDisplay`; those
/// left out stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "Lobby", "rotateSecs": 60})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisplayEdit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 12))]
    pub dashboards: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 5, maximum = 3600))]
    pub rotate_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<DisplayTheme>,
}

impl NewDisplay {
    /// Why it cannot be saved, naming the field: `(field, message)`. (Whether its dashboards are
    /// the tenant's is the store's to say.)
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(("name", format!("a name is 1 to {MAX_NAME} characters, without control characters")));
        }
        if self.dashboards.is_empty() || self.dashboards.len() > MAX_DASHBOARDS {
            return Err(("dashboards", format!("a display shows 1 to {MAX_DASHBOARDS} dashboards")));
        }
        let mut seen = self.dashboards.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != self.dashboards.len() {
            return Err(("dashboards", "each dashboard once".into()));
        }
        if !(MIN_ROTATE_SECS..=MAX_ROTATE_SECS).contains(&self.rotate_secs) {
            return Err(("rotateSecs", format!("{MIN_ROTATE_SECS} to {MAX_ROTATE_SECS} seconds")));
        }
        Ok(())
    }

    /// `self` with `edit` applied.
    pub fn edited(&self, edit: DisplayEdit) -> NewDisplay {
        NewDisplay {
            name: edit.name.unwrap_or_else(|| self.name.clone()),
            dashboards: edit.dashboards.unwrap_or_else(|| self.dashboards.clone()),
            rotate_secs: edit.rotate_secs.unwrap_or(self.rotate_secs),
            theme: edit.theme.unwrap_or(self.theme),
        }
    }
}

/// A display as admins see it (`GET /api/admin/displays`).
///
/// Its schema is written by hand (see the `openapi` impl below): serde flattens `settings` into it,
/// and the derived `allOf` would hold `NewDisplay`'s schema, which forbids other fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisplayInfo {
    pub id: i64,
    #[serde(flatten)]
    pub settings: NewDisplay,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// When a screen last opened a connection or polled with it (Unix seconds), and from where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_addr: Option<String>,
    /// When it was revoked (Unix seconds): it shows nothing since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

/// Answer to `POST /api/admin/displays`: the display, and the link a screen opens. The link holds
/// the secret, which is shown this once and kept only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedDisplay {
    pub display: DisplayInfo,
    /// `/display/{id}#{secret}`: the secret rides in the fragment, which browsers never send, so it
    /// is in no server's or proxy's log.
    pub link: String,
}

/// Body of `POST /api/display/session`: what the screen read from its link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"display": 4, "secret": "9f86d081884c7d659a2feaa0c55ad015"})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisplayClaim {
    /// The display's id: the link's path ends with it.
    pub display: i64,
    /// The link's fragment (after `#`).
    pub secret: String,
}

/// What a display session shows (`GET /api/display/me`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DisplayBrief {
    pub id: i64,
    pub name: String,
    /// The dashboards it rotates through, in order.
    pub dashboards: Vec<i64>,
    /// Seconds each dashboard shows.
    pub rotate_secs: u32,
    pub theme: DisplayTheme,
    /// After this many seconds without fresh data the screen says so.
    pub stale_secs: u32,
    /// Names the site's build (its assets' directory): a screen whose page came from another build
    /// reloads itself, so a deploy reaches the wall without anyone touching it.
    pub build: String,
}

/// [`DisplayInfo`]'s schema: one object with [`NewDisplay`]'s fields and its own, as serde writes it.
/// The derive would write `allOf: [NewDisplay, {id, …}]`, and `NewDisplay`'s schema forbids fields
/// it does not name (`deny_unknown_fields`), so no display would match that.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for DisplayInfo {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};

        let RefOr::T(Schema::Object(settings)) = <NewDisplay as utoipa::PartialSchema>::schema() else {
            unreachable!("a struct's schema is an object")
        };
        let field = |types: &[Type], format: Option<KnownFormat>, description: &str| {
            let schema_type = match types {
                [one] => SchemaType::new(one.clone()),
                many => SchemaType::from_iter(many.iter().cloned()),
            };
            ObjectBuilder::new()
                .schema_type(schema_type)
                .format(format.map(SchemaFormat::KnownFormat))
                .description(Some(description))
        };
        let unix_secs = |nullable: bool, description: &str| {
            let types: &[Type] = if nullable { &[Type::Integer, Type::Null] } else { &[Type::Integer] };
            field(types, Some(KnownFormat::Int64), description)
        };
        let description = "A display as admins see it (`GET /api/admin/displays`): its settings, as in `NewDisplay`, \
            and its record.";
        let mut display = ObjectBuilder::new()
            .description(Some(description))
            .property("id", field(&[Type::Integer], Some(KnownFormat::Int64), "The display's id."))
            .required("id")
            .property("createdAt", unix_secs(false, "When it was made (Unix seconds)."))
            .required("createdAt")
            .property(
                "lastSeenAt",
                unix_secs(true, "When a screen last opened a connection or polled with it (Unix seconds)."),
            )
            .property("lastSeenAddr", field(&[Type::String, Type::Null], None, "The address it was last seen from."))
            .property("revokedAt", unix_secs(true, "When it was revoked (Unix seconds): it shows nothing since."))
            .build();
        display.properties.extend(settings.properties);
        display.required.extend(settings.required);
        display.into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for DisplayInfo {
    fn name() -> std::borrow::Cow<'static, str> {
        "DisplayInfo".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <NewDisplay as utoipa::ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display() -> NewDisplay {
        NewDisplay { name: "Ops wall".into(), dashboards: vec![1, 2], rotate_secs: 30, theme: DisplayTheme::Dark }
    }

    #[test]
    fn a_display_is_checked_field_by_field() {
        assert_eq!(display().check(), Ok(()));
        assert_eq!(NewDisplay { name: " ".into(), ..display() }.check().unwrap_err().0, "name");
        assert_eq!(NewDisplay { name: "a\u{7}".into(), ..display() }.check().unwrap_err().0, "name");
        assert_eq!(NewDisplay { dashboards: vec![], ..display() }.check().unwrap_err().0, "dashboards");
        assert_eq!(NewDisplay { dashboards: vec![1, 1], ..display() }.check().unwrap_err().1, "each dashboard once");
        assert_eq!(NewDisplay { rotate_secs: 1, ..display() }.check().unwrap_err().0, "rotateSecs");
    }

    #[test]
    fn the_wire_shape_is_camel_case_with_defaults() {
        let parsed: NewDisplay = serde_json::from_str(r#"{"name":"Wall","dashboards":[3]}"#).unwrap();
        assert_eq!((parsed.rotate_secs, parsed.theme), (DEFAULT_ROTATE_SECS, DisplayTheme::Dark));
        assert!(serde_json::from_str::<NewDisplay>(r#"{"name":"W","dashboards":[3],"admin":true}"#).is_err());
        let edit: DisplayEdit = serde_json::from_str(r#"{"name":"Lobby"}"#).unwrap();
        assert_eq!(display().edited(edit).name, "Lobby");
        let info = DisplayInfo {
            id: 4,
            settings: display(),
            created_at: 1,
            last_seen_at: None,
            last_seen_addr: None,
            revoked_at: None,
        };
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["rotateSecs"], 30);
        assert_eq!(json["theme"], "dark");
        assert!(json.get("revokedAt").is_none());
    }
}
