-- A tenant's live mode replaces its on/off flag: `live`, `polling` (WebSockets and SSE refused, pages
-- poll) or `off`. The old column stays, written as `live_mode <> 'off'`, so that a node of the
-- previous release still reads the right on/off during a rolling upgrade or a rollback.
ALTER TABLE tenants ADD COLUMN live_mode TEXT NOT NULL DEFAULT 'live'
    CHECK (live_mode IN ('live', 'polling', 'off'));
UPDATE tenants SET live_mode = 'off' WHERE live_dashboards = 0;
