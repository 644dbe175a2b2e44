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
