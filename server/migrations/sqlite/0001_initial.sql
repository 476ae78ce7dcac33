-- Tenants, their users and API keys, login sessions, the audit trail, and server settings.

CREATE TABLE tenants (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    live_dashboards  INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    role           TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
    created_at     INTEGER NOT NULL
);

-- A login. The JWT in the cookie names its session; logging out revokes it.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX sessions_by_user ON sessions(user_id);

-- Publishers' keys: `ld_<id>_<secret>`; only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    secret_hash  BLOB NOT NULL,
    label        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    ts         INTEGER NOT NULL,
    tenant_id  TEXT,
    actor      TEXT,
    action     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    detail     TEXT
);
CREATE INDEX audit_by_tenant ON audit(tenant_id, ts);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  BLOB NOT NULL
);
