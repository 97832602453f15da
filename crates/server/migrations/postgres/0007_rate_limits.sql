-- Rate-limit token buckets shared by every instance (see rate_limit.rs for the arithmetic). One row
-- per (scope, key); a bucket that has refilled carries no information and is deleted.
CREATE TABLE rate_limit_buckets (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    -- -1 marks a row created for a first call that has not been saved yet
    units      BIGINT NOT NULL,
    at_ms      BIGINT NOT NULL,
    -- when the bucket will be full again: after that the row can go
    full_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX rate_limit_buckets_full ON rate_limit_buckets (full_at_ms);
