-- The consent leg: a pending consent is keyed by the email to prove (the account is looked up, or
-- created, only once the email is proved), carries the request's confirmation_secret back to the
-- orchestrator as `state`, and can be superseded by a newer request for the same email. The user
-- is known at request time only for an existing built-in user, so user_id may be NULL.
ALTER TABLE pending_consents ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN email TEXT NOT NULL DEFAULT '',
    ADD COLUMN email_normalized TEXT NOT NULL DEFAULT '',
    ADD COLUMN name TEXT,
    ADD COLUMN organization_name TEXT,
    ADD COLUMN state TEXT,
    ADD COLUMN superseded_at BIGINT,
    ADD COLUMN declined_at BIGINT,
    ADD COLUMN proof_hash TEXT;
CREATE INDEX pending_consents_email ON pending_consents (orchestrator, email_normalized);
CREATE INDEX IF NOT EXISTS pending_consents_user ON pending_consents (user_id);

-- One-time sign-in links emailed to prove the address of a pending consent. Stored hashed.
CREATE TABLE consent_links (
    token_hash   TEXT PRIMARY KEY,
    consent_hash TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX consent_links_consent ON consent_links (consent_hash);
