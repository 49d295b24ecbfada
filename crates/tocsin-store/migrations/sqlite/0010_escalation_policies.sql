-- Escalation policies: ordered levels of targets with delays, kept as JSON in the
-- API's wire form (`EscalationPolicy` levels) since they are read and written
-- whole. A service names at most one policy; a nullable column keeps every
-- existing service query and row as it was.
CREATE TABLE escalation_policies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    levels TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
ALTER TABLE services ADD COLUMN escalation_policy_id INTEGER REFERENCES escalation_policies(id);
