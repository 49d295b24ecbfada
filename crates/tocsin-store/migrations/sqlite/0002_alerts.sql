ALTER TABLE services ADD COLUMN auto_resolve INTEGER NOT NULL DEFAULT 1;

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services(id),
    integration_key_id INTEGER REFERENCES integration_keys(id),
    incident_id INTEGER REFERENCES incidents(id),
    dedup_key TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    summary TEXT NOT NULL,
    source TEXT NOT NULL,
    integration TEXT NOT NULL,
    labels TEXT NOT NULL,
    details TEXT NOT NULL,
    links TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    resolved_at INTEGER,
    raw TEXT NOT NULL
);
-- At most one open alert per (service, dedup key): the dedup guarantee.
CREATE UNIQUE INDEX alerts_open ON alerts (service_id, dedup_key) WHERE status <> 'resolved';
CREATE INDEX alerts_incident ON alerts (incident_id);
CREATE INDEX alerts_last_seen ON alerts (last_seen, id);
