-- Orchestrator signing secrets managed with `provisio admin signing-secret`, valid in addition to the
-- configured ones. The HMAC needs the plaintext, so the secret is sealed (ChaCha20-Poly1305 under a
-- key derived from the server secret in `settings`), not hashed; `hint` is a short prefix for
-- display. A secret is valid while `retire_at` is NULL or in the future.
CREATE TABLE signing_secrets (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    orchestrator  TEXT NOT NULL,
    hint          TEXT NOT NULL,
    label         TEXT,
    nonce         TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    retire_at     INTEGER
);
CREATE INDEX signing_secrets_orchestrator ON signing_secrets (orchestrator, id);
