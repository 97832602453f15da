-- The consent leg: a pending consent is keyed by the email to prove (the account is looked up, or
-- created, only once the email is proved), carries the request's confirmation_secret back to the
-- orchestrator as `state`, and can be superseded by a newer request for the same email. The user
-- is known at request time only for an existing built-in user, so user_id may be NULL.
CREATE TABLE pending_consents_new (
    token_hash           TEXT PRIMARY KEY,
    orchestrator         TEXT NOT NULL,
    orchestrator_account TEXT NOT NULL,
    request_id           TEXT NOT NULL,
    user_id              TEXT,
    scopes               TEXT NOT NULL,
    code_challenge       TEXT,
    team_id              INTEGER,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    completed_at         INTEGER,
    email                TEXT NOT NULL DEFAULT '',
    email_normalized     TEXT NOT NULL DEFAULT '',
    name                 TEXT,
    organization_name    TEXT,
    -- the request's confirmation_secret, answered to the orchestrator as `state`
    state                TEXT,
    superseded_at        INTEGER,
    declined_at          INTEGER,
    -- hash of the browser cookie set when a sign-in link proved the email
    proof_hash           TEXT
);
INSERT INTO pending_consents_new (token_hash, orchestrator, orchestrator_account, request_id, user_id,
    scopes, code_challenge, team_id, created_at, expires_at, completed_at)
    SELECT token_hash, orchestrator, orchestrator_account, request_id, user_id, scopes, code_challenge,
    team_id, created_at, expires_at, completed_at FROM pending_consents;
DROP TABLE pending_consents;
ALTER TABLE pending_consents_new RENAME TO pending_consents;
CREATE INDEX pending_consents_email ON pending_consents (orchestrator, email_normalized);
CREATE INDEX pending_consents_user ON pending_consents (user_id);

-- One-time sign-in links emailed to prove the address of a pending consent. Stored hashed.
CREATE TABLE consent_links (
    token_hash   TEXT PRIMARY KEY,
    consent_hash TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);
CREATE INDEX consent_links_consent ON consent_links (consent_hash);
