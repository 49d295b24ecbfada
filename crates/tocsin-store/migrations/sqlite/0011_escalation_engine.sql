-- Personal notification setup, the durable job table, running escalations and
-- the notification outbox.

-- One way to reach a user. `verified` is kept so delivery can refuse methods that
-- were never proven; methods are unique per user by kind and address.
CREATE TABLE contact_methods (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    label TEXT NOT NULL,
    verified INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (user_id, kind, address)
);
CREATE INDEX contact_methods_user ON contact_methods (user_id);

-- A user's notification rules are read and written whole (the index of a rule is
-- part of a notification's idempotency key): JSON `NotificationRule` list.
-- Working hours: JSON `WorkingHoursParts`, or NULL for "any time".
ALTER TABLE users ADD COLUMN notification_rules TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN working_hours TEXT;

-- Durable timers: one row per thing that must happen at `run_at`, unique by
-- `job_key` (e.g. `escalation:42`), claimed by one node at a time
-- (FOR UPDATE SKIP LOCKED) and deleted or moved on in the transaction doing it.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    job_key TEXT NOT NULL UNIQUE,
    run_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (run_at);

-- One escalation per incident: its policy snapshot and where it stands
-- (`EscalationState` JSON); `phase` repeated as a column for queries.
CREATE TABLE escalations (
    incident_id INTEGER PRIMARY KEY REFERENCES incidents(id),
    policy_id INTEGER NOT NULL,
    service_id INTEGER,
    urgency TEXT NOT NULL,
    phase TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The outbox: every notification request, unique by idempotency key, handed to
-- delivery when `send_at` comes (status scheduled -> handed), or cancelled when
-- the incident is acknowledged or resolved first.
CREATE TABLE notification_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL,
    incident_id INTEGER REFERENCES incidents(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    contact_method_id INTEGER NOT NULL,
    contact_kind TEXT NOT NULL,
    address TEXT NOT NULL,
    message TEXT NOT NULL,
    send_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    handed_at INTEGER,
    cancelled_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX notification_requests_due ON notification_requests (status, send_at);
CREATE INDEX notification_requests_incident ON notification_requests (incident_id);
CREATE INDEX notification_requests_user ON notification_requests (user_id, created_at);
