-- Runbooks, edited and run (issue 8). Every save of a runbook is a version;
-- `attach_rules` holds the current version's rules (JSON `AttachRules`), NULL
-- when it is attached by hand only, so declaring an incident reads only the
-- runbooks that may attach by themselves. Runbooks saved before this version
-- attach by hand until they are saved again. A deleted runbook keeps its row
-- (copies attached to incidents name it) under a name no one can type.
ALTER TABLE runbooks ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runbooks ADD COLUMN attach_rules TEXT;
ALTER TABLE runbooks ADD COLUMN updated_by INTEGER REFERENCES users(id);
ALTER TABLE runbooks ADD COLUMN deleted_at INTEGER;

CREATE TABLE runbook_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    runbook_id INTEGER NOT NULL REFERENCES runbooks(id),
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    UNIQUE (runbook_id, version)
);
INSERT INTO runbook_versions (runbook_id, version, name, source, created_by, created_at)
    SELECT id, 1, name, source, created_by, updated_at FROM runbooks;

-- An attached copy: the name and version it was copied from, how it came
-- (`rule`, `hand` or `workflow`), and, once a person takes it off the
-- incident, when and by whom (the row stays, so rules do not attach it again).
ALTER TABLE incident_runbooks ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE incident_runbooks ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE incident_runbooks ADD COLUMN how TEXT NOT NULL DEFAULT 'workflow';
ALTER TABLE incident_runbooks ADD COLUMN detached_at INTEGER;
ALTER TABLE incident_runbooks ADD COLUMN detached_by TEXT;
UPDATE incident_runbooks SET name = (SELECT r.name FROM runbooks r WHERE r.id = incident_runbooks.runbook_id);

-- A runbook item's step runs as a run of a workflow kept for its runbook: a
-- version per item run, manual trigger, stored as deleted from the start, so
-- no list, trigger or edit of workflows reaches it while its runs read like
-- any other's.
ALTER TABLE workflows ADD COLUMN runbook_id INTEGER REFERENCES runbooks(id);
CREATE INDEX workflows_runbook ON workflows (runbook_id);
