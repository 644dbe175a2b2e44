-- Keep in step with ../sqlite.

-- Every sealed secret names the version of the sealing key it was sealed
-- under (oauth3/sealing/v1, …); rows from before versioning are v1.
ALTER TABLE secrets ADD COLUMN key_version TEXT NOT NULL DEFAULT 'v1';
CREATE INDEX secrets_key_version ON secrets (key_version);

-- The version each purpose's new ciphertexts use. `oauth3 rotate-keys`
-- moves it on, then re-encrypts the older rows; every replica reads it here.
CREATE TABLE key_versions (
    purpose TEXT PRIMARY KEY,
    version TEXT NOT NULL
);
INSERT INTO key_versions (purpose, version) VALUES ('sealing', 'v1');

-- Signed receipts. An execution records the spec hash it was claimed under
-- and the SHA-256 of its code (or component), and, once finished, its signed
-- receipt (JSON) and that receipt's id, which its audit rows show (joined by
-- execution id, so finishing writes one row however many calls it made).
ALTER TABLE executions ADD COLUMN spec_hash TEXT;
ALTER TABLE executions ADD COLUMN code_hash TEXT;
ALTER TABLE executions ADD COLUMN receipt TEXT;
ALTER TABLE executions ADD COLUMN receipt_id TEXT;
