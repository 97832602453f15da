-- Resources: what the orchestrator provisions. The built-in `analytics` backend makes each resource
-- a project, so a resource's id is its project's id.

CREATE TABLE resources (
    project_id               INTEGER PRIMARY KEY REFERENCES projects (id),
    organization_id          TEXT NOT NULL REFERENCES organizations (id),
    service_id               TEXT NOT NULL,
    orchestrator             TEXT NOT NULL,
    -- the orchestrator's project id: its idempotency key within the organization
    orchestrator_project_id  TEXT,
    orchestrator_resource_id TEXT,
    environment              TEXT,
    configuration            TEXT,
    status                   TEXT NOT NULL,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    removed_at               INTEGER
);
CREATE UNIQUE INDEX resources_orchestrator_project
    ON resources (organization_id, orchestrator, orchestrator_project_id);

-- Secret keys scoped to one project. Only a hash and a display prefix are kept.
CREATE TABLE personal_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    label      TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    -- 'provisioning' for keys handed to the orchestrator (at most one live per resource)
    source     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX personal_keys_project ON personal_keys (project_id);

-- Keys a project had before a rotation, kept so that introspection can say "inactive" for them.
CREATE TABLE retired_project_keys (
    api_key    TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    retired_at INTEGER NOT NULL
);

-- The plan an organization is on, and the payment token that activated it (hashed).
CREATE TABLE billing (
    organization_id    TEXT PRIMARY KEY REFERENCES organizations (id),
    plan               TEXT NOT NULL,
    payment_token_hash TEXT,
    backend_reference  TEXT,
    updated_at         INTEGER NOT NULL
);
