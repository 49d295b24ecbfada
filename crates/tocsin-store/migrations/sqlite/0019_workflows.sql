-- Workflows and runbooks (issue 8): definitions and their versions, the
-- trigger queue, runs, encrypted secrets, and runbooks attached to incidents.

-- A workflow: its name, whether it is on, and its current version. Deleting
-- one marks it deleted (its versions and runs stay readable) and frees its name.
CREATE TABLE workflows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    trigger_kind TEXT NOT NULL,
    version INTEGER NOT NULL,
    current_version_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX workflows_name ON workflows (name) WHERE deleted_at IS NULL;

-- Every edit is a new version: the YAML as written. Runs name the version they follow.
CREATE TABLE workflow_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id INTEGER NOT NULL REFERENCES workflows(id),
    version INTEGER NOT NULL,
    source TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    UNIQUE (workflow_id, version)
);

-- Events some enabled workflow may trigger on, queued in the transaction that
-- appended them; the dispatcher deletes a row in the transaction that creates
-- its runs. `chain`: the runs whose steps caused the event (JSON, loop guard).
CREATE TABLE workflow_trigger_queue (
    event_id INTEGER PRIMARY KEY,
    chain TEXT,
    queued_at INTEGER NOT NULL
);

-- A run: its stored `RunState` (JSON), when it next needs the engine
-- (`due_at`), and, while a step executes, the lease of the engine executing
-- it (`claim` names that claim; `lease_until` ends it).
CREATE TABLE workflow_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id INTEGER NOT NULL REFERENCES workflows(id),
    version_id INTEGER NOT NULL REFERENCES workflow_versions(id),
    incident_id INTEGER REFERENCES incidents(id),
    subject TEXT,
    trigger_kind TEXT NOT NULL,
    trigger_event_id INTEGER,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    chain TEXT NOT NULL,
    due_at INTEGER,
    lease_until INTEGER,
    claim TEXT,
    started_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX workflow_runs_due ON workflow_runs (due_at);
CREATE INDEX workflow_runs_workflow ON workflow_runs (workflow_id, created_at);
CREATE INDEX workflow_runs_incident ON workflow_runs (incident_id);

-- Events a step's own store calls appended, by the step attempt's idempotency
-- key: written with the change, so an attempt interrupted after its change
-- committed is known to be done and not made twice.
CREATE TABLE workflow_step_events (
    idempotency_key TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (idempotency_key, event_id)
);

-- Secrets steps read by name: ChaCha20-Poly1305, a random nonce per value,
-- stored as base64(nonce || ciphertext || tag). Never returned.
CREATE TABLE workflow_secrets (
    name TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_by INTEGER REFERENCES users(id),
    updated_at INTEGER NOT NULL
);

-- Runbooks: markdown checklists whose items may carry runnable steps.
CREATE TABLE runbooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A runbook attached to an incident: the text as attached (later edits do not
-- change a checklist under way) and its progress (JSON `Progress`).
CREATE TABLE incident_runbooks (
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    runbook_id INTEGER NOT NULL REFERENCES runbooks(id),
    source TEXT NOT NULL,
    progress TEXT NOT NULL,
    attached_by TEXT NOT NULL,
    attached_at INTEGER NOT NULL,
    PRIMARY KEY (incident_id, runbook_id)
);

-- Bumped by every change to a workflow, so nodes notice their cached set of
-- trigger event kinds is stale.
INSERT INTO counters (name, value) VALUES ('workflows', 0);
