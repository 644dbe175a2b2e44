-- Keep in step with ../postgres.

-- Moves on with every change to an owner's secrets, in the changing
-- statement's transaction. A claim reads it with the execution, and opened
-- secrets cached in a process are used only while it is unchanged: a
-- changed or deleted secret is never used by an execution claimed after
-- the change, on any replica.
ALTER TABLE tenants ADD COLUMN secrets_version BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER secrets_inserted AFTER INSERT ON secrets BEGIN
    UPDATE tenants SET secrets_version = secrets_version + 1 WHERE id = NEW.owner_id;
END;

CREATE TRIGGER secrets_updated AFTER UPDATE ON secrets BEGIN
    UPDATE tenants SET secrets_version = secrets_version + 1 WHERE id IN (OLD.owner_id, NEW.owner_id);
END;

CREATE TRIGGER secrets_deleted AFTER DELETE ON secrets BEGIN
    UPDATE tenants SET secrets_version = secrets_version + 1 WHERE id = OLD.owner_id;
END;
