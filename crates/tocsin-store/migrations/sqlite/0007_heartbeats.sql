-- Heartbeat monitors (dead man's switch). `due_at` is the deadline for the next
-- ping, kept as a column so the checker finds due heartbeats, and the time of the
-- next one, with one indexed query.
CREATE TABLE heartbeats (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services(id),
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    interval_seconds INTEGER NOT NULL,
    grace_seconds INTEGER NOT NULL,
    state TEXT NOT NULL,
    last_ping_at INTEGER,
    due_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX heartbeats_due ON heartbeats (due_at) WHERE state <> 'down';
CREATE INDEX heartbeats_service ON heartbeats (service_id);
