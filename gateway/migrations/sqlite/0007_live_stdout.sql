-- Keep in step with ../postgres.

-- What a running execution has printed so far (complete lines), written by
-- its worker as it goes, so that whichever replica a client polls can show
-- output as it arrives. Cleared when the execution finishes: its result
-- holds all of it.
ALTER TABLE executions ADD COLUMN stdout_so_far TEXT;
