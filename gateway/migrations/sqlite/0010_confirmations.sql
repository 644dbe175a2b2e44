-- Keep in step with ../postgres.

-- Calls that a rule marked `confirm` allows wait here for the owner: one
-- row per exact request (permit + request_hash). At most one row per
-- request is live (pending or approved), so a retried call finds the one
-- already waiting, and an approval is used up by one UPDATE ... RETURNING.
-- Times are Unix ms. `query` and `headers` are JSON lists of [name,
-- value] pairs as the agent sent them (never injected values); `body` is
-- what the owner is shown (pretty JSON, clipped text, or a note).
CREATE TABLE confirmations (
    id              TEXT PRIMARY KEY,
    permit_id       TEXT NOT NULL REFERENCES permits(id),
    execution_id    TEXT NOT NULL,
    integration     TEXT NOT NULL,
    method          TEXT NOT NULL,
    url             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    query           TEXT NOT NULL,
    headers         TEXT NOT NULL,
    body            TEXT,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    decided_at      BIGINT,
    decided_by      TEXT REFERENCES tenants(id),
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE UNIQUE INDEX confirmations_live ON confirmations (permit_id, request_hash)
    WHERE status IN ('pending', 'approved');
CREATE INDEX confirmations_permit ON confirmations (permit_id, created_at);
