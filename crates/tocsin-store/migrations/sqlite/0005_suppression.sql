-- Suppressed alerts are kept, with why: `silence:<id>`, `maintenance:<id>` or `flapping`.
ALTER TABLE alerts ADD COLUMN suppressed_by TEXT;
CREATE INDEX alerts_suppressed ON alerts (id) WHERE suppressed_by IS NOT NULL AND status <> 'resolved';
-- Flapping counts the openings of one (service, dedup key) within a window: the
-- resolved ones here, the open one through alerts_open. Partial, so that repeats
-- (updates of open alerts) never write to it.
CREATE INDEX alerts_resolved_key ON alerts (service_id, dedup_key, first_seen) WHERE status = 'resolved';

-- No foreign key to services: deleting a service leaves its silences and rules as history.
CREATE TABLE silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    matchers TEXT NOT NULL,
    service_id INTEGER,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    comment TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_by_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX silences_ends_at ON silences (ends_at);

CREATE TABLE maintenance_windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    description TEXT NOT NULL,
    -- JSON array of service ids.
    service_ids TEXT NOT NULL,
    -- One-off: starts_at and ends_at. Weekly: days (JSON array), start_time, duration_minutes, time_zone, until.
    starts_at INTEGER,
    ends_at INTEGER,
    days TEXT,
    start_time TEXT,
    duration_minutes INTEGER,
    time_zone TEXT,
    until INTEGER,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE flapping_rules (
    service_id INTEGER PRIMARY KEY,
    max_toggles INTEGER NOT NULL,
    window_minutes INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
