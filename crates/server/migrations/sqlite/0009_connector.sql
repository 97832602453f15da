-- Connector mode: users, organizations and projects may live in the SaaS behind provisio, so the
-- protocol state (account requests, codes, token families and their scope, consents, deep links,
-- resources) stops referencing provisio's own account tables. SQLite cannot drop a constraint, so
-- each table is rebuilt. The children of token_families are created referencing the new table and
-- dropped before the old one, so no row ever points at a dropped parent; renaming the new table
-- carries their references along.

CREATE TABLE account_requests_new (
    orchestrator     TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    project_id       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    PRIMARY KEY (orchestrator, request_id)
);
INSERT INTO account_requests_new SELECT * FROM account_requests;
DROP TABLE account_requests;
ALTER TABLE account_requests_new RENAME TO account_requests;

CREATE TABLE authorization_codes_new (
    code_hash            TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL,
    organization_id      TEXT NOT NULL,
    project_id           INTEGER NOT NULL,
    orchestrator         TEXT NOT NULL,
    orchestrator_account TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    code_challenge       TEXT,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    consumed_at          INTEGER
);
INSERT INTO authorization_codes_new SELECT * FROM authorization_codes;
DROP TABLE authorization_codes;
ALTER TABLE authorization_codes_new RENAME TO authorization_codes;
-- Connector mode: the user's `available_teams` as the SaaS reported them when the code was issued
-- (JSON), so redeeming the code needs no call to the SaaS. NULL: read provisio's own tables.
ALTER TABLE authorization_codes ADD COLUMN available_teams TEXT;

CREATE TABLE token_families_new (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL,
    organization_id      TEXT NOT NULL,
    project_id           INTEGER NOT NULL,
    orchestrator         TEXT NOT NULL,
    orchestrator_account TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    code_hash            TEXT,
    created_at           INTEGER NOT NULL,
    revoked_at           INTEGER,
    revoked_reason       TEXT
);
INSERT INTO token_families_new SELECT * FROM token_families;

CREATE TABLE token_family_projects_new (
    family_id  TEXT NOT NULL REFERENCES token_families_new (id),
    project_id INTEGER NOT NULL,
    PRIMARY KEY (family_id, project_id)
);
INSERT INTO token_family_projects_new SELECT * FROM token_family_projects;

CREATE TABLE access_tokens_new (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES token_families_new (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
INSERT INTO access_tokens_new SELECT * FROM access_tokens;

CREATE TABLE refresh_tokens_new (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES token_families_new (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    rotated_at INTEGER,
    revoked_at INTEGER
);
INSERT INTO refresh_tokens_new SELECT * FROM refresh_tokens;

DROP TABLE token_family_projects;
DROP TABLE access_tokens;
DROP TABLE refresh_tokens;
DROP TABLE token_families;
ALTER TABLE token_families_new RENAME TO token_families;
ALTER TABLE token_family_projects_new RENAME TO token_family_projects;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX token_families_code ON token_families (code_hash);
CREATE INDEX token_families_user ON token_families (user_id);
CREATE INDEX access_tokens_family ON access_tokens (family_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE pending_consents_new (
    token_hash           TEXT PRIMARY KEY,
    orchestrator         TEXT NOT NULL,
    orchestrator_account TEXT NOT NULL,
    request_id           TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    code_challenge       TEXT,
    team_id              INTEGER,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    completed_at         INTEGER
);
INSERT INTO pending_consents_new SELECT * FROM pending_consents;
DROP TABLE pending_consents;
ALTER TABLE pending_consents_new RENAME TO pending_consents;

CREATE TABLE deep_links_new (
    token_hash      TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    project_id      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
);
INSERT INTO deep_links_new SELECT * FROM deep_links;
DROP TABLE deep_links;
ALTER TABLE deep_links_new RENAME TO deep_links;

-- A resource's id is the id of the project it lives in: provisio's own project (built-in) or the
-- SaaS's (connector).
CREATE TABLE resources_new (
    project_id               INTEGER PRIMARY KEY,
    organization_id          TEXT NOT NULL,
    service_id               TEXT NOT NULL,
    orchestrator             TEXT NOT NULL,
    orchestrator_project_id  TEXT,
    orchestrator_resource_id TEXT,
    environment              TEXT,
    configuration            TEXT,
    status                   TEXT NOT NULL,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    removed_at               INTEGER
);
INSERT INTO resources_new SELECT * FROM resources;
DROP TABLE resources;
ALTER TABLE resources_new RENAME TO resources;
CREATE UNIQUE INDEX resources_orchestrator_project
    ON resources (organization_id, orchestrator, orchestrator_project_id);
-- Connector mode: the non-secret part of the access configuration the SaaS answered (JSON), for
-- reads. NULL: built-in (read from the project).
ALTER TABLE resources ADD COLUMN public_access TEXT;
-- Counts the operations recorded on the resource; part of each SaaS call's webhook-id, so a retry
-- of an operation that was never recorded carries the same id and the next operation a new one.
ALTER TABLE resources ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

-- Connector mode: every state-changing call to the SaaS, recorded before it is made (pending) and
-- after it answered (done), under its webhook-id. `result` holds the answer's non-secret part.
CREATE TABLE connector_calls (
    webhook_id TEXT PRIMARY KEY,
    operation  TEXT NOT NULL,
    state      TEXT NOT NULL,
    result     TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX connector_calls_pending ON connector_calls (state, created_at);

-- The events outbox: written in the transaction of the change it reports, delivered at least once.
-- `sequence` orders them per deployment. Times in milliseconds except created_at (seconds).
CREATE TABLE events (
    sequence        INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    type            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    data            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    claimed_until_ms INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE INDEX events_due ON events (state, next_attempt_ms);
