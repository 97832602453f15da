-- What happened to accounts, grants, resources and dashboard links, and for whom. Never a secret:
-- ids only, and a small JSON detail.
CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    event           TEXT NOT NULL,
    orchestrator    TEXT,
    user_id         TEXT,
    organization_id TEXT,
    project_id      INTEGER,
    request_id      TEXT,
    detail          TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id, at);
