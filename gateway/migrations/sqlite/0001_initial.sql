-- Timestamps are Unix milliseconds. Keep in step with ../postgres.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'owner')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE invites (
    code_hash   TEXT PRIMARY KEY,
    created_by  TEXT,
    created_at  BIGINT NOT NULL,
    used_by     TEXT,
    used_at     BIGINT
);

CREATE TABLE secrets (
    owner_id    TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (owner_id, name)
);

CREATE TABLE permits (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES tenants(id),
    owner_id    TEXT REFERENCES tenants(id),
    status      TEXT NOT NULL,
    spec        TEXT,
    spec_hash   TEXT,
    created_at  BIGINT NOT NULL,
    approved_at BIGINT,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX permits_agent ON permits (agent_id);
CREATE INDEX permits_owner ON permits (owner_id);

CREATE TABLE permit_requests (
    id              TEXT PRIMARY KEY,
    permit_id       TEXT NOT NULL REFERENCES permits(id),
    agent_id        TEXT NOT NULL REFERENCES tenants(id),
    description     TEXT NOT NULL,
    intent          TEXT,
    spec            TEXT NOT NULL,
    spec_hash       TEXT NOT NULL,
    base_spec_hash  TEXT,
    drafter         TEXT,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    decided_at      BIGINT,
    decided_by      TEXT REFERENCES tenants(id),
    permit_expires_at BIGINT
);
CREATE INDEX permit_requests_permit ON permit_requests (permit_id);

CREATE TABLE executions (
    id          TEXT PRIMARY KEY,
    permit_id   TEXT NOT NULL REFERENCES permits(id),
    agent_id    TEXT NOT NULL REFERENCES tenants(id),
    action_id   TEXT NOT NULL,
    code        TEXT NOT NULL,
    args        TEXT NOT NULL,
    status      TEXT NOT NULL,
    worker      TEXT,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    result      TEXT,
    UNIQUE (agent_id, permit_id, action_id)
);
CREATE INDEX executions_status ON executions (status, created_at);
CREATE INDEX executions_agent_status ON executions (agent_id, status);

CREATE TABLE audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    permit_id       TEXT NOT NULL,
    execution_id    TEXT NOT NULL,
    integration     TEXT NOT NULL,
    method          TEXT NOT NULL,
    url             TEXT NOT NULL,
    decision        TEXT NOT NULL,
    reason          TEXT,
    status          BIGINT,
    request_bytes   BIGINT NOT NULL,
    response_bytes  BIGINT NOT NULL,
    started_at      BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL
);
CREATE INDEX audit_permit ON audit (permit_id, id);

CREATE TABLE rate_state (
    permit_id   TEXT NOT NULL,
    integration TEXT NOT NULL,
    tat         BIGINT NOT NULL,
    PRIMARY KEY (permit_id, integration)
);

CREATE TABLE replicas (
    id            TEXT PRIMARY KEY,
    heartbeat_at  BIGINT NOT NULL
);
