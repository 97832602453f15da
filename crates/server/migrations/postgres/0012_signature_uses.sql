-- The request each signed call was first seen on (PostgreSQL only; a SQLite database has one
-- process, which keeps them in memory). The protocol's signature covers the timestamp and body,
-- not the method or path; binding it to its first request keeps a captured signature from
-- authorizing a different action. Kept only while the signature could verify.
CREATE TABLE signature_uses (
    use_hash   TEXT PRIMARY KEY,
    target     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX signature_uses_expiry ON signature_uses (expires_at);
