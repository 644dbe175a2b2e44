-- Keep in step with ../postgres.

-- Owners' browser sessions, by the SHA-256 (hex) of the cookie's value, so a
-- copy of the database signs no one in. A session ends when it expires (no
-- later than the token it was signed in with), at logout, or when that token
-- is revoked, or all the owner's tokens are (the generation moves on).
CREATE TABLE sessions (
    id_hash          TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    token_id         TEXT NOT NULL,
    token_generation BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- What an approval bound: the request's spec_hash, or that of the narrower
-- spec the owner built from it.
ALTER TABLE permit_requests ADD COLUMN approved_spec_hash TEXT;
-- The spec hash the agent asked for, when its owner approved a narrower one.
ALTER TABLE permits ADD COLUMN narrowed_from TEXT;

-- The dashboard: pending requests newest first, and each permit's calls,
-- denials and last use without reading the audit rows themselves.
CREATE INDEX permit_requests_status ON permit_requests (status, created_at);
CREATE INDEX audit_permit_stats ON audit (permit_id, decision, started_at);
