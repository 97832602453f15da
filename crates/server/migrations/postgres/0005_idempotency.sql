-- Responses recorded under an Idempotency-Key, sealed with a key derived from the server secret and
-- the Idempotency-Key itself (which is stored only hashed), so a recorded credential cannot be read
-- from the database alone. Kept 24 hours.
CREATE TABLE idempotency_records (
    key_hash     TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    nonce        TEXT NOT NULL,
    sealed_body  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);
