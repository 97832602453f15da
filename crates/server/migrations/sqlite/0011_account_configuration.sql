-- The account request's `configuration` as the account configuration schema passed it (JSON), kept
-- with a pending consent so that the account made when it completes gets it too.
ALTER TABLE pending_consents ADD COLUMN configuration TEXT;
