CREATE TABLE change_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services(id),
    integration_key_id INTEGER REFERENCES integration_keys(id),
    summary TEXT NOT NULL,
    source TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    details TEXT NOT NULL,
    links TEXT NOT NULL
);
CREATE INDEX change_events_service ON change_events (service_id, occurred_at);
