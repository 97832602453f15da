-- Accounts: users, organizations, memberships, projects; and the OAuth grant state bound to them.
-- Times are Unix seconds. Codes and tokens are stored only as SHA-256 hex of the value.

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    -- trimmed and lowercased: the identity the orchestrator vouches for
    email_normalized TEXT NOT NULL UNIQUE,
    first_name       TEXT,
    name             TEXT,
    created_at       INTEGER NOT NULL,
    deleted_at       INTEGER
);

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    -- the id breaks ties between memberships created in the same second ("oldest" is deterministic)
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT NOT NULL REFERENCES users (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    role            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (user_id, organization_id)
);
CREATE INDEX memberships_organization ON memberships (organization_id);

CREATE TABLE projects (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name            TEXT NOT NULL,
    is_demo         INTEGER NOT NULL DEFAULT 0,
    -- the public project key: public by design, so stored as is
    api_key         TEXT NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL
);
CREATE INDEX projects_organization ON projects (organization_id);

-- An orchestrator's request id, so that a retry resolves to the same account and creates nothing.
CREATE TABLE account_requests (
    orchestrator     TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id),
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    project_id       INTEGER NOT NULL REFERENCES projects (id),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    PRIMARY KEY (orchestrator, request_id)
);

CREATE TABLE authorization_codes (
    code_hash            TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id),
    organization_id      TEXT NOT NULL REFERENCES organizations (id),
    project_id           INTEGER NOT NULL REFERENCES projects (id),
    orchestrator         TEXT NOT NULL,
    orchestrator_account TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    code_challenge       TEXT,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    consumed_at          INTEGER
);

-- Every token issued from one code (through any number of refreshes) belongs to one family; a
-- reused refresh token or a second redemption of the code revokes the family.
CREATE TABLE token_families (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id),
    organization_id      TEXT NOT NULL REFERENCES organizations (id),
    -- the project resolved when the account was linked: the default resource
    project_id           INTEGER NOT NULL REFERENCES projects (id),
    orchestrator         TEXT NOT NULL,
    orchestrator_account TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    code_hash            TEXT,
    created_at           INTEGER NOT NULL,
    revoked_at           INTEGER,
    revoked_reason       TEXT
);
CREATE INDEX token_families_code ON token_families (code_hash);
CREATE INDEX token_families_user ON token_families (user_id);

-- The projects a family's tokens reach.
CREATE TABLE token_family_projects (
    family_id  TEXT NOT NULL REFERENCES token_families (id),
    project_id INTEGER NOT NULL REFERENCES projects (id),
    PRIMARY KEY (family_id, project_id)
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES token_families (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX access_tokens_family ON access_tokens (family_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES token_families (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    rotated_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Consent linking: an existing user must confirm in a browser before a code is issued.
CREATE TABLE pending_consents (
    token_hash           TEXT PRIMARY KEY,
    orchestrator         TEXT NOT NULL,
    orchestrator_account TEXT NOT NULL,
    request_id           TEXT NOT NULL,
    user_id              TEXT NOT NULL REFERENCES users (id),
    scopes               TEXT NOT NULL,
    code_challenge       TEXT,
    team_id              INTEGER,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    completed_at         INTEGER
);
