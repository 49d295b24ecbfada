-- Action items created in an issue tracker (issue 9). An item's issue is
-- made by a run of a hidden one-step workflow (`system_key`
-- 'action_item_issue:jira' or 'action_item_issue:github', stored as deleted
-- so no list, trigger or edit reaches it), like a runbook item's step; the
-- run's end writes the issue's URL onto the item.
ALTER TABLE workflows ADD COLUMN system_key TEXT;
CREATE UNIQUE INDEX workflows_system_key ON workflows (system_key);

-- `jira` or `github`; the latest run; `running`, `succeeded` or
-- `failed`; what went wrong; the issue's key (`OPS-12`, `acme/api#7`).
ALTER TABLE action_items ADD COLUMN tracker TEXT;
ALTER TABLE action_items ADD COLUMN tracker_run_id BIGINT REFERENCES workflow_runs(id);
ALTER TABLE action_items ADD COLUMN tracker_status TEXT;
ALTER TABLE action_items ADD COLUMN tracker_error TEXT;
ALTER TABLE action_items ADD COLUMN tracker_key TEXT;
CREATE INDEX action_items_tracker_run ON action_items (tracker_run_id);
