-- A redeemed code names the family it issued, so that redeeming it again revokes that family by
-- the code's own row. The index on token_families (code_hash) went with it: a random hash per
-- family, one page of its own written for each (the SQLite write path writes every changed
-- page). Families still record their code, for a redemption from before this migration.
ALTER TABLE authorization_codes ADD COLUMN family_id TEXT;
UPDATE authorization_codes
   SET family_id = (SELECT f.id FROM token_families f WHERE f.code_hash = authorization_codes.code_hash
                    ORDER BY f.created_at, f.id LIMIT 1)
 WHERE consumed_at IS NOT NULL;
DROP INDEX token_families_code;
