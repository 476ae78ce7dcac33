-- Wall displays (see `protocol::display`): a screen that shows some of a tenant's dashboards
-- without anyone signed in on it. Only the SHA-256 of its link's secret is kept. Revoked displays
-- stay, for the record and the audit.
CREATE TABLE displays (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    secret_hash     TEXT NOT NULL,
    rotate_secs     INTEGER NOT NULL,
    theme           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER,
    last_seen_addr  TEXT,
    revoked_at      INTEGER
);
CREATE INDEX displays_by_tenant ON displays(tenant_id);

-- The dashboards a display rotates through, in order. A dashboard deleted goes from its displays.
CREATE TABLE display_dashboards (
    display_id    INTEGER NOT NULL REFERENCES displays(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    dashboard_id  INTEGER NOT NULL REFERENCES dashboards(id) ON DELETE CASCADE,
    PRIMARY KEY (display_id, position)
);
