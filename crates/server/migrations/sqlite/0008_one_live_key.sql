-- At most one live key handed to the orchestrator per project, as a constraint: concurrent
-- rotations on several instances cannot both leave theirs live (the loser's insert fails and its
-- transaction is attempted again, revoking the winner's key first).
CREATE UNIQUE INDEX personal_keys_one_live_provisioning
    ON personal_keys (project_id) WHERE source = 'provisioning' AND revoked_at IS NULL;
