-- Keep in step with ../postgres.

-- Components agents submit, by the SHA-256 of their bytes (hex): stored once
-- however often they run, so any replica can run a queued one.
CREATE TABLE components (
    hash        TEXT PRIMARY KEY,
    bytes       BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

-- An execution runs either its `code` (JavaScript) or the component named here.
ALTER TABLE executions ADD COLUMN component_hash TEXT REFERENCES components(hash);
CREATE INDEX executions_component ON executions (component_hash);
