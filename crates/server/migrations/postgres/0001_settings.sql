-- Server-wide values the server generates once and keeps (e.g. the zero-config signing secret).
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
