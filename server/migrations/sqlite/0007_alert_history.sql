-- Each widget's threshold alerts as they happened (see `notifying::alerts`): the latest 200 per
-- widget are kept; they go with the widget.
CREATE TABLE alert_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    widget_id   INTEGER NOT NULL REFERENCES widgets(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    since_ms    BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL
);
CREATE INDEX alert_events_by_widget ON alert_events(widget_id, id);
