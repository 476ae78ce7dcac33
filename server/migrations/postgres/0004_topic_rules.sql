-- A tenant's topic rules (which roles read which topics, which fields only some roles see), as the
-- JSON of `protocol::topic_rules::TopicRules` without its version. `version` grows by one with each
-- change, so a node that hears of a change keeps the newest rules whatever order it reads them in.
CREATE TABLE topic_rules (
    tenant   TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    version  BIGINT NOT NULL,
    rules    TEXT NOT NULL
);
