-- Keep in step with ../sqlite.

-- The per-agent in-flight cap as a constraint: each queued or running
-- execution holds one of the agent's numbered slots, taken by the insert
-- itself, so no burst of submissions can pass the cap. Finished executions
-- leave the index and free their slot.
ALTER TABLE executions ADD COLUMN slot INTEGER;
CREATE UNIQUE INDEX executions_agent_slot ON executions (agent_id, slot) WHERE status IN ('queued', 'running');

-- Token revocation: revoking all of a tenant's tokens moves its generation
-- on; one token is revoked by its id until it would have expired anyway.
ALTER TABLE tenants ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    revoked_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

-- Retention deletes by age.
CREATE INDEX audit_started ON audit (started_at);
CREATE INDEX executions_finished ON executions (finished_at);
