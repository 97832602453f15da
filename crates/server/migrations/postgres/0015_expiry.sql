-- Housekeeping deletes account requests once expired and authorization codes a week after (they
-- hold emails and grants nothing reads any more). By expiry, so that the deletes read only what
-- they delete; times only grow, so each insert lands at the index's end.
CREATE INDEX account_requests_expiry ON account_requests (expires_at);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);
