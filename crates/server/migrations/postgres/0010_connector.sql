-- Connector mode: users, organizations and projects may live in the SaaS behind provisio, so the
-- protocol state (account requests, codes, token families and their scope, consents, deep links,
-- resources) stops referencing provisio's own account tables.
ALTER TABLE account_requests DROP CONSTRAINT account_requests_user_id_fkey,
    DROP CONSTRAINT account_requests_organization_id_fkey,
    DROP CONSTRAINT account_requests_project_id_fkey;
ALTER TABLE authorization_codes DROP CONSTRAINT authorization_codes_user_id_fkey,
    DROP CONSTRAINT authorization_codes_organization_id_fkey,
    DROP CONSTRAINT authorization_codes_project_id_fkey;
ALTER TABLE token_families DROP CONSTRAINT token_families_user_id_fkey,
    DROP CONSTRAINT token_families_organization_id_fkey,
    DROP CONSTRAINT token_families_project_id_fkey;
ALTER TABLE token_family_projects DROP CONSTRAINT token_family_projects_project_id_fkey;
ALTER TABLE pending_consents DROP CONSTRAINT pending_consents_user_id_fkey;
ALTER TABLE deep_links DROP CONSTRAINT deep_links_user_id_fkey,
    DROP CONSTRAINT deep_links_organization_id_fkey,
    DROP CONSTRAINT deep_links_project_id_fkey;
-- A resource's id is the id of the project it lives in: provisio's own project (built-in) or the
-- SaaS's (connector).
ALTER TABLE resources DROP CONSTRAINT resources_project_id_fkey,
    DROP CONSTRAINT resources_organization_id_fkey;

-- Connector mode: the user's `available_teams` as the SaaS reported them when the code was issued
-- (JSON), so redeeming the code needs no call to the SaaS. NULL: read provisio's own tables.
ALTER TABLE authorization_codes ADD COLUMN available_teams TEXT;
-- Connector mode: the non-secret part of the access configuration the SaaS answered (JSON), for
-- reads. NULL: built-in (read from the project).
ALTER TABLE resources ADD COLUMN public_access TEXT;
-- Counts the operations recorded on the resource; part of each SaaS call's webhook-id, so a retry
-- of an operation that was never recorded carries the same id and the next operation a new one.
ALTER TABLE resources ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;

-- Connector mode: every state-changing call to the SaaS, recorded before it is made (pending) and
-- after it answered (done), under its webhook-id. `result` holds the answer's non-secret part.
CREATE TABLE connector_calls (
    webhook_id TEXT PRIMARY KEY,
    operation  TEXT NOT NULL,
    state      TEXT NOT NULL,
    result     TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX connector_calls_pending ON connector_calls (state, created_at);

-- The events outbox: written in the transaction of the change it reports, delivered at least once.
-- `sequence` orders them per deployment. Times in milliseconds except created_at (seconds).
CREATE TABLE events (
    sequence         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    type             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    data             TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL,
    claimed_until_ms BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    delivered_at     BIGINT
);
CREATE INDEX events_due ON events (state, next_attempt_ms);
