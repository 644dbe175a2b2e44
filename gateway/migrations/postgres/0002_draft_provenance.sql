-- What the drafter read and why the spec looks as it does (JSON: drafter,
-- model, per-integration rationale, warnings and doc hashes); null for specs
-- the agent proposed itself.
ALTER TABLE permit_requests ADD COLUMN draft TEXT;
