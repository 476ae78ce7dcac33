//! Stored dashboards as the JSON API carries them: what the server keeps in SQLite and the browser
//! lays out. Both sides compile this module, so the shapes cannot drift apart.

use crate::collection_notify::CollectionNotify;
use crate::thresholds::Threshold;
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, fmt};

/// Longest dashboard or widget title.
pub const MAX_TITLE_LEN: usize = 80;
/// Most widgets on one dashboard.
pub const MAX_WIDGETS: usize = 24;

/// What a widget draws, and so which topic kind it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WidgetKind {
    LineChart,
    BarChart,
    KpiTiles,
    NotificationFeed,
    JobPanel,
    ActiveUsers,
    DocumentTable,
}

impl WidgetKind {
    pub const ALL: [WidgetKind; 7] = [
        WidgetKind::LineChart,
        WidgetKind::BarChart,
        WidgetKind::KpiTiles,
        WidgetKind::NotificationFeed,
        WidgetKind::JobPanel,
        WidgetKind::ActiveUsers,
        WidgetKind::DocumentTable,
    ];

    /// A stable token for the API, CSS classes and test selectors.
    pub fn slug(self) -> &'static str {
        match self {
            WidgetKind::LineChart => "line_chart",
            WidgetKind::BarChart => "bar_chart",
            WidgetKind::KpiTiles => "kpi_tiles",
            WidgetKind::NotificationFeed => "notification_feed",
            WidgetKind::JobPanel => "job_panel",
            WidgetKind::ActiveUsers => "active_users",
            WidgetKind::DocumentTable => "document_table",
        }
    }

    pub fn parse(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// What the add-widget form calls it.
    pub fn label(self) -> &'static str {
        match self {
            WidgetKind::LineChart => "Line chart",
            WidgetKind::BarChart => "Bar chart",
            WidgetKind::KpiTiles => "KPI tiles",
            WidgetKind::NotificationFeed => "Notification feed",
            WidgetKind::JobPanel => "Job panel",
            WidgetKind::ActiveUsers => "Active users",
            WidgetKind::DocumentTable => "Document table",
        }
    }

    /// Whether it can have thresholds: KPI tiles (one per key) and charts (one for the series).
    pub fn has_thresholds(self) -> bool {
        matches!(self, WidgetKind::KpiTiles | WidgetKind::LineChart | WidgetKind::BarChart)
    }

    /// The topic kind (see docs/protocol.md) whose messages this widget understands.
    pub fn topic_kind(self) -> &'static str {
        match self {
            WidgetKind::LineChart | WidgetKind::BarChart => "series",
            WidgetKind::KpiTiles => "metrics",
            WidgetKind::NotificationFeed | WidgetKind::JobPanel => "events",
            WidgetKind::ActiveUsers | WidgetKind::DocumentTable => "collection",
        }
    }
}

/// How often a widget shows what arrived: `live`, every update as it arrives; `5s` to `1min`, what
/// arrived in that time, all at once; `manual`, only when its refresh button is pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WidgetMode {
    /// Every update as it arrives.
    #[default]
    #[serde(rename = "live")]
    Live,
    /// Stays subscribed and applies what arrived every so many seconds.
    #[serde(rename = "5s")]
    Every5s,
    #[serde(rename = "15s")]
    Every15s,
    #[serde(rename = "30s")]
    Every30s,
    #[serde(rename = "1min")]
    Every1min,
    /// Unsubscribed; the widget's refresh button fetches a fresh snapshot.
    #[serde(rename = "manual")]
    Manual,
}

impl WidgetMode {
    pub const ALL: [WidgetMode; 6] = [
        WidgetMode::Live,
        WidgetMode::Every5s,
        WidgetMode::Every15s,
        WidgetMode::Every30s,
        WidgetMode::Every1min,
        WidgetMode::Manual,
    ];

    /// Seconds between ticks for the interval modes.
    pub fn interval_secs(self) -> Option<u32> {
        match self {
            WidgetMode::Every5s => Some(5),
            WidgetMode::Every15s => Some(15),
            WidgetMode::Every30s => Some(30),
            WidgetMode::Every1min => Some(60),
            WidgetMode::Live | WidgetMode::Manual => None,
        }
    }

    /// Whether the widget keeps a subscription in this mode.
    pub fn subscribed(self) -> bool {
        self != WidgetMode::Manual
    }

    /// The API's token ("live", "30s", "manual").
    pub fn slug(self) -> &'static str {
        match self {
            WidgetMode::Live => "live",
            WidgetMode::Every5s => "5s",
            WidgetMode::Every15s => "15s",
            WidgetMode::Every30s => "30s",
            WidgetMode::Every1min => "1min",
            WidgetMode::Manual => "manual",
        }
    }

    pub fn parse(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.slug() == slug)
    }
}

/// What the badge says: "Live", "Every 30s", "Manual".
impl fmt::Display for WidgetMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WidgetMode::Live => f.write_str("Live"),
            WidgetMode::Every1min => f.write_str("Every 1 min"),
            WidgetMode::Manual => f.write_str("Manual"),
            other => write!(f, "Every {}s", other.interval_secs().unwrap_or_default()),
        }
    }
}

/// One widget of a dashboard, as an admin defined it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WidgetDef {
    pub id: i64,
    pub title: String,
    pub kind: WidgetKind,
    /// Topic name relative to the tenant.
    pub topic: String,
    /// The mode a user sees it in until they choose their own.
    pub default_mode: WidgetMode,
    /// The notifications its collection raises (collection widgets only; none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<CollectionNotify>,
    /// Its warning and critical bounds (KPI tiles: per key; charts: one, for the series).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
}

impl WidgetDef {
    /// The widget's id on the live connection and in the page.
    pub fn dom_id(&self) -> String {
        format!("w{}", self.id)
    }

    /// The id of the second feed an active-users widget follows (`presence/activity`).
    pub fn activity_feed_id(&self) -> String {
        format!("{}-activity", self.dom_id())
    }

    /// Every topic this widget follows, under the ids it follows them by.
    pub fn feeds(&self) -> Vec<PageFeed> {
        let mut feeds = vec![PageFeed { widget_id: self.dom_id(), topic: self.topic.clone() }];
        if self.kind == WidgetKind::ActiveUsers {
            let topic = crate::topics::PRESENCE_ACTIVITY_TOPIC.to_owned();
            feeds.push(PageFeed { widget_id: self.activity_feed_id(), topic });
        }
        feeds
    }
}

/// One subscription of a dashboard page: the id its data is delivered under, and its topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageFeed {
    pub widget_id: String,
    pub topic: String,
}

/// The widget id of the header's notification centre, on every live page.
pub const NOTIFICATION_CENTER_FEED: &str = "notification-center";

/// The id a dashboard page follows the tenant's dashboard edits by.
pub const DASHBOARD_EDITS_FEED: &str = "dashboard-edits";

/// What the server announces of a dashboard after every edit, on the tenant's
/// [`DASHBOARD_EDITS_TOPIC`](crate::topics::DASHBOARD_EDITS_TOPIC): enough for an open page to
/// tell whether what it shows is out of date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardOutline {
    pub title: String,
    /// Widget ids in display order.
    pub widgets: Vec<i64>,
    /// A digest of the widgets' settings (thresholds, notifications): 0 when none has any, so an
    /// announcement from before settings existed still matches.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub settings: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// FNV-1a over the widgets' settings as JSON: the same on the server that announces and the page
/// that compares (both compile this code); 0 when no widget has settings.
fn settings_digest(widgets: &[WidgetDef]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut any = false;
    for widget in widgets.iter().filter(|w| w.notify.is_some() || !w.thresholds.is_empty()) {
        any = true;
        let json = serde_json::to_string(&(widget.id, &widget.notify, &widget.thresholds)).expect("settings serialise");
        for byte in json.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    if any { hash.max(1) } else { 0 }
}

impl DashboardOutline {
    /// The outlines the edits topic holds, by dashboard id; documents of another shape are skipped.
    pub fn all_in<'a>(
        docs: impl IntoIterator<Item = (&'a String, &'a serde_json::Map<String, serde_json::Value>)>,
    ) -> BTreeMap<i64, Self> {
        docs.into_iter()
            .filter_map(|(id, doc)| {
                let outline = serde_json::from_value(serde_json::Value::Object(doc.clone())).ok()?;
                Some((id.parse().ok()?, outline))
            })
            .collect()
    }
}

/// What a page must load again after edits were announced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stale {
    /// The tenant's list of dashboards (a new one, another title).
    pub list: bool,
    /// The dashboard on screen (widgets added, removed or moved).
    pub shown: bool,
}

impl Stale {
    /// Compares the announced outlines (by dashboard id) with what the page shows. A dashboard
    /// without an outline says nothing: the topic only holds those edited since its history began.
    pub fn of(
        outlines: &BTreeMap<i64, DashboardOutline>,
        list: &[DashboardSummary],
        shown: Option<&DashboardView>,
    ) -> Self {
        let listed =
            |(id, outline): (&i64, &DashboardOutline)| list.iter().any(|d| d.id == *id && d.title == outline.title);
        Self {
            list: !outlines.iter().all(listed),
            shown: shown.is_some_and(|view| outlines.get(&view.id).is_some_and(|o| *o != view.outline())),
        }
    }

    pub fn any(self) -> bool {
        self.list || self.shown
    }
}

/// A dashboard in the tenant's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DashboardSummary {
    pub id: i64,
    pub title: String,
}

/// Everything a page needs to lay out one dashboard for the signed-in user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DashboardView {
    pub id: i64,
    pub title: String,
    /// In display order.
    pub widgets: Vec<WidgetDef>,
    /// Whether this user may change it (admins).
    pub can_edit: bool,
    /// The user's own mode per widget id (the id written as a JSON key: `{"12": "30s"}`), where they
    /// chose one.
    // As a string-keyed map: utoipa would give an `i64` key `propertyNames: {type: integer}`, which
    // no JSON key (always a string) satisfies.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, WidgetMode>))]
    pub modes: BTreeMap<i64, WidgetMode>,
}

impl DashboardView {
    /// The mode a widget starts in for this user: their choice, else the widget's default.
    pub fn mode_of(&self, widget: &WidgetDef) -> WidgetMode {
        self.modes.get(&widget.id).copied().unwrap_or(widget.default_mode)
    }

    /// Everything a page showing this dashboard follows: the header's notification centre, the
    /// tenant's dashboard edits and every widget's feeds. The SSE and polling transports serve
    /// exactly this set.
    pub fn page_feeds(&self) -> Vec<PageFeed> {
        let page = [
            (NOTIFICATION_CENTER_FEED, crate::topics::NOTIFICATIONS_TOPIC),
            (DASHBOARD_EDITS_FEED, crate::topics::DASHBOARD_EDITS_TOPIC),
        ]
        .map(|(widget_id, topic)| PageFeed { widget_id: widget_id.to_owned(), topic: topic.to_owned() });
        page.into_iter().chain(self.widgets.iter().flat_map(WidgetDef::feeds)).collect()
    }

    /// What the server announces of this dashboard when it is edited.
    pub fn outline(&self) -> DashboardOutline {
        DashboardOutline {
            title: self.title.clone(),
            widgets: self.widgets.iter().map(|w| w.id).collect(),
            settings: settings_digest(&self.widgets),
        }
    }
}

/// Body of `POST /api/dashboards`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"title": "Operations"})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDashboard {
    /// 1 to 80 characters, no control characters; stored trimmed.
    pub title: String,
}

/// Body of `POST /api/dashboards/{id}/widgets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "title": "Orders",
    "kind": "kpi_tiles",
    "topic": "sales/kpis",
    "defaultMode": "live",
    "thresholds": [{"key": "orders_per_sec", "direction": "below", "warning": 50, "critical": 30, "forSecs": 60}]
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWidget {
    /// 1 to 80 characters, no control characters; stored trimmed.
    pub title: String,
    pub kind: WidgetKind,
    /// Topic name relative to the tenant.
    pub topic: String,
    /// The mode a user sees it in until they choose their own.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = WidgetMode::default))]
    pub default_mode: WidgetMode,
    /// The notifications its collection raises (collection widgets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<CollectionNotify>,
    /// Its warning and critical bounds: KPI tiles one per key, charts one without a key, other kinds
    /// none; at most 32.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
}

/// Most thresholds one widget holds.
pub const MAX_THRESHOLDS: usize = 32;

/// Whether `thresholds` suit a widget of `kind`: a KPI tile's are each for a key of its own; a
/// chart has at most one, for its series (no key); other kinds have none. `Err` names the faulty
/// entry (`thresholds[2]: …`).
pub fn check_thresholds(kind: WidgetKind, thresholds: &[Threshold]) -> Result<(), String> {
    if thresholds.is_empty() {
        return Ok(());
    }
    if !kind.has_thresholds() {
        return Err(format!("a {} has no thresholds", kind.label().to_lowercase()));
    }
    if thresholds.len() > MAX_THRESHOLDS {
        return Err(format!("thresholds: at most {MAX_THRESHOLDS}"));
    }
    for (i, threshold) in thresholds.iter().enumerate() {
        let at = |message: &str| format!("thresholds[{i}]: {message}");
        threshold.validate().map_err(|e| at(&e.to_string()))?;
        match kind {
            WidgetKind::KpiTiles if threshold.key.trim().is_empty() => return Err(at("name the KPI's key")),
            WidgetKind::KpiTiles if thresholds[..i].iter().any(|t| t.key == threshold.key) => {
                return Err(at(&format!("{:?} has a threshold already", threshold.key)));
            }
            WidgetKind::LineChart | WidgetKind::BarChart if !threshold.key.is_empty() => {
                return Err(at("a chart's threshold is for its series: no key"));
            }
            WidgetKind::LineChart | WidgetKind::BarChart if i > 0 => return Err(at("a chart has one threshold")),
            _ => {}
        }
    }
    Ok(())
}

/// Body of `PUT /api/dashboards/{id}/order`: every widget id, in the new order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"widgetIds": [12, 10, 11]})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WidgetOrder {
    pub widget_ids: Vec<i64>,
}

/// Body of `PUT /api/me/widget-modes/{widget}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"mode": "30s"})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModeChoice {
    pub mode: WidgetMode,
}

/// What a page reports after its connection came back (`POST /api/me/recovery`): how long it was
/// without data, for the server's recovery-time histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"downtimeMs": 4200})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoveryReport {
    /// Milliseconds without data; the server counts at most a day.
    pub downtime_ms: u64,
}

/// A user's own settings (`GET`/`PUT /api/me/preferences`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"toastLevels": ["warning", "error"]})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preferences {
    /// Notification levels that raise a toast.
    pub toast_levels: Vec<crate::data::Level>,
}

impl Default for Preferences {
    fn default() -> Self {
        use crate::data::Level;
        Self { toast_levels: vec![Level::Warning, Level::Error] }
    }
}

/// A title as stored: trimmed, non-empty, at most [`MAX_TITLE_LEN`] characters, no control characters.
pub fn clean_title(title: &str) -> Result<String, &'static str> {
    let title = title.trim();
    if title.is_empty() {
        return Err("a title is required");
    }
    if title.chars().count() > MAX_TITLE_LEN {
        return Err("the title is longer than 80 characters");
    }
    if title.chars().any(char::is_control) {
        return Err("the title contains control characters");
    }
    Ok(title.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(title: &str, widgets: &[i64]) -> DashboardOutline {
        DashboardOutline { title: title.into(), widgets: widgets.to_vec(), settings: 0 }
    }

    fn shown(id: i64, title: &str, widgets: &[i64]) -> DashboardView {
        let def = |id: i64| WidgetDef {
            id,
            title: format!("w{id}"),
            kind: WidgetKind::LineChart,
            topic: "t".into(),
            default_mode: WidgetMode::Live,
            notify: None,
            thresholds: vec![],
        };
        DashboardView {
            id,
            title: title.into(),
            widgets: widgets.iter().copied().map(def).collect(),
            can_edit: false,
            modes: BTreeMap::new(),
        }
    }

    #[test]
    fn a_page_reloads_only_what_an_announced_edit_changed() {
        let list =
            vec![DashboardSummary { id: 1, title: "Ops".into() }, DashboardSummary { id: 2, title: "Night".into() }];
        let view = shown(1, "Ops", &[10, 11]);
        let stale =
            |outlines: &[(i64, DashboardOutline)]| Stale::of(&outlines.iter().cloned().collect(), &list, Some(&view));
        assert_eq!(stale(&[]), Stale::default(), "nothing announced: nothing to reload");
        assert_eq!(stale(&[(1, outline("Ops", &[10, 11])), (2, outline("Night", &[]))]), Stale::default());
        assert_eq!(stale(&[(1, outline("Ops", &[10, 11, 12]))]), Stale { list: false, shown: true }, "a widget added");
        assert_eq!(stale(&[(1, outline("Ops", &[11, 10]))]), Stale { list: false, shown: true }, "widgets moved");
        assert_eq!(stale(&[(2, outline("Night", &[5]))]), Stale::default(), "another dashboard's widgets");
        assert_eq!(stale(&[(3, outline("New", &[]))]), Stale { list: true, shown: false }, "a new dashboard");
        assert!(stale(&[(1, outline("Ops 2", &[10, 11]))]) == Stale { list: true, shown: true }, "renamed");
        let none = Stale::of(&[(3, outline("First", &[]))].into_iter().collect(), &[], None);
        assert_eq!(none, Stale { list: true, shown: false }, "the first dashboard of a tenant that had none");

        // A widget's settings changed: the same widgets, another digest.
        let mut edited = shown(1, "Ops", &[10, 11]);
        edited.widgets[1].thresholds = vec![crate::thresholds::Threshold {
            key: String::new(),
            direction: crate::thresholds::Direction::Above,
            warning: None,
            critical: Some(500.0),
            for_secs: 0,
            hysteresis: 0.0,
        }];
        let announced = edited.outline();
        assert_ne!(announced.settings, 0);
        assert_eq!(stale(&[(1, announced.clone())]), Stale { list: false, shown: true }, "thresholds set");
        let page = |view: &DashboardView| Stale::of(&[(1, announced.clone())].into_iter().collect(), &list, Some(view));
        assert_eq!(page(&edited), Stale::default(), "a page that has them is up to date");
        assert_eq!(view.outline().settings, 0, "no settings, no digest: older announcements still match");
    }

    #[test]
    fn outlines_are_read_from_the_edits_topic() {
        let docs: BTreeMap<String, serde_json::Map<String, serde_json::Value>> = [
            ("7", serde_json::json!({"title": "Ops", "widgets": [3, 1]})),
            ("x", serde_json::json!({"title": "bad id", "widgets": []})),
            ("8", serde_json::json!({"title": "no widgets"})),
        ]
        .into_iter()
        .map(|(id, doc)| (id.to_owned(), doc.as_object().cloned().unwrap()))
        .collect();
        assert_eq!(DashboardOutline::all_in(&docs), [(7, outline("Ops", &[3, 1]))].into_iter().collect());
    }

    #[test]
    fn modes_read_as_the_badge_says_and_round_trip_as_tokens() {
        let badges: Vec<String> = WidgetMode::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(badges, ["Live", "Every 5s", "Every 15s", "Every 30s", "Every 1 min", "Manual"]);
        for mode in WidgetMode::ALL {
            assert_eq!(WidgetMode::parse(mode.slug()), Some(mode));
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{}\"", mode.slug()));
        }
        assert_eq!(WidgetMode::Every30s.interval_secs(), Some(30));
        assert!(!WidgetMode::Manual.subscribed());
    }

    #[test]
    fn a_page_follows_the_header_notifications_and_every_widgets_feeds() {
        let widget = |id, kind| WidgetDef {
            id,
            title: "t".into(),
            kind,
            topic: format!("t/{id}"),
            default_mode: WidgetMode::Live,
            notify: None,
            thresholds: vec![],
        };
        let view = DashboardView {
            id: 1,
            title: "d".into(),
            widgets: vec![widget(3, WidgetKind::LineChart), widget(4, WidgetKind::ActiveUsers)],
            can_edit: false,
            modes: BTreeMap::new(),
        };
        let feeds: Vec<(String, String)> = view.page_feeds().into_iter().map(|f| (f.widget_id, f.topic)).collect();
        let pair = |w: &str, t: &str| (w.to_owned(), t.to_owned());
        assert_eq!(
            feeds,
            [
                pair(NOTIFICATION_CENTER_FEED, crate::topics::NOTIFICATIONS_TOPIC),
                pair(DASHBOARD_EDITS_FEED, crate::topics::DASHBOARD_EDITS_TOPIC),
                pair("w3", "t/3"),
                pair("w4", "t/4"),
                pair("w4-activity", crate::topics::PRESENCE_ACTIVITY_TOPIC),
            ]
        );
    }

    #[test]
    fn kinds_round_trip_and_name_their_topic_kind() {
        for kind in WidgetKind::ALL {
            assert_eq!(WidgetKind::parse(kind.slug()), Some(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.slug()));
        }
        assert_eq!(WidgetKind::BarChart.topic_kind(), "series");
        assert_eq!(WidgetKind::ActiveUsers.topic_kind(), "collection");
    }

    #[test]
    fn thresholds_suit_their_widget_kind() {
        use crate::thresholds::{Direction, Threshold};
        let bound = |key: &str| Threshold {
            key: key.into(),
            direction: Direction::Below,
            warning: Some(50.0),
            critical: Some(30.0),
            for_secs: 60,
            hysteresis: 0.0,
        };
        assert_eq!(check_thresholds(WidgetKind::KpiTiles, &[bound("orders"), bound("returns")]), Ok(()));
        assert_eq!(
            check_thresholds(WidgetKind::KpiTiles, &[bound("orders"), bound("orders")]),
            Err("thresholds[1]: \"orders\" has a threshold already".into())
        );
        assert_eq!(
            check_thresholds(WidgetKind::KpiTiles, &[bound(" ")]),
            Err("thresholds[0]: name the KPI's key".into())
        );
        assert_eq!(check_thresholds(WidgetKind::LineChart, &[bound("")]), Ok(()));
        assert_eq!(
            check_thresholds(WidgetKind::BarChart, &[bound(""), bound("")]),
            Err("thresholds[1]: a chart has one threshold".into())
        );
        assert_eq!(
            check_thresholds(WidgetKind::LineChart, &[bound("x")]),
            Err("thresholds[0]: a chart's threshold is for its series: no key".into())
        );
        assert_eq!(
            check_thresholds(WidgetKind::DocumentTable, &[bound("x")]),
            Err("a document table has no thresholds".into())
        );
        let upside_down = Threshold { warning: Some(10.0), ..bound("orders") };
        assert_eq!(
            check_thresholds(WidgetKind::KpiTiles, &[upside_down]),
            Err("thresholds[0]: bad when below: the critical bound is below the warning bound".into())
        );
        assert_eq!(check_thresholds(WidgetKind::JobPanel, &[]), Ok(()));
    }

    #[test]
    fn the_users_choice_wins_over_the_default() {
        let widget = WidgetDef {
            id: 7,
            title: "t".into(),
            kind: WidgetKind::LineChart,
            topic: "a/b".into(),
            default_mode: WidgetMode::Every5s,
            notify: None,
            thresholds: vec![],
        };
        let mut view =
            DashboardView { id: 1, title: "d".into(), widgets: vec![], can_edit: false, modes: BTreeMap::new() };
        assert_eq!(view.mode_of(&widget), WidgetMode::Every5s);
        view.modes.insert(7, WidgetMode::Manual);
        assert_eq!(view.mode_of(&widget), WidgetMode::Manual);
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(clean_title("  Ops  ").unwrap(), "Ops");
        assert!(clean_title("   ").is_err());
        assert!(clean_title(&"x".repeat(81)).is_err());
        assert!(clean_title("a\u{7}b").is_err());
    }
}
