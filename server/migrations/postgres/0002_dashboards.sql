-- Stored dashboards and their widgets, each user's widget modes, and each user's preferences.
-- Identity columns never hand out an id twice: a browser may still hold a removed widget's view.

CREATE TABLE dashboards (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    title       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX dashboards_by_tenant ON dashboards(tenant_id);

CREATE TABLE widgets (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dashboard_id  BIGINT NOT NULL REFERENCES dashboards(id) ON DELETE CASCADE,
    position      BIGINT NOT NULL,
    title         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    topic         TEXT NOT NULL,
    default_mode  TEXT NOT NULL
);
CREATE INDEX widgets_by_dashboard ON widgets(dashboard_id, position);

-- A user's own mode for a widget ("Every 30s"), overriding the widget's default.
CREATE TABLE widget_modes (
    user_id    BIGINT NOT NULL REFERENCES users(id),
    widget_id  BIGINT NOT NULL REFERENCES widgets(id) ON DELETE CASCADE,
    mode       TEXT NOT NULL,
    PRIMARY KEY (user_id, widget_id)
);
CREATE INDEX widget_modes_by_widget ON widget_modes(widget_id);

-- A user's settings as one JSON document (app::dashboard::Preferences).
CREATE TABLE preferences (
    user_id  BIGINT PRIMARY KEY REFERENCES users(id),
    value    TEXT NOT NULL
);
