-- Keep in step with ../sqlite.

-- Moves on with every change to an owner's secrets, in the changing
-- statement's transaction. A claim reads it with the execution, and opened
-- secrets cached in a process are used only while it is unchanged: a
-- changed or deleted secret is never used by an execution claimed after
-- the change, on any replica.
ALTER TABLE tenants ADD COLUMN secrets_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION oauth3_secrets_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE tenants SET secrets_version = secrets_version + 1 WHERE id = OLD.owner_id;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE tenants SET secrets_version = secrets_version + 1 WHERE id IN (OLD.owner_id, NEW.owner_id);
    ELSE
        UPDATE tenants SET secrets_version = secrets_version + 1 WHERE id = NEW.owner_id;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER secrets_changed AFTER INSERT OR UPDATE OR DELETE ON secrets
    FOR EACH ROW EXECUTE FUNCTION oauth3_secrets_changed();

-- An execution that ends (a worker's finish, or an interruption) is
-- announced to every replica's LISTEN when its transaction commits, without
-- a statement of its own. (SQLite has one process: it wakes waiters in memory.)
CREATE FUNCTION oauth3_execution_finished() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('oauth3_finished', NEW.id);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER execution_finished AFTER UPDATE OF status ON executions
    FOR EACH ROW WHEN (OLD.status IN ('queued', 'running') AND NEW.status IN ('completed', 'failed'))
    EXECUTE FUNCTION oauth3_execution_finished();
