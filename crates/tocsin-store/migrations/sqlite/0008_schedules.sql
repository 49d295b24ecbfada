-- On-call schedules. The layers are kept as JSON in the API's wire form
-- (`ScheduleParts` layers): they are only ever read and written whole, and the
-- computation needs all of them at once. Overrides are rows of their own, so a
-- range of them is one indexed query and each change is its own event.
CREATE TABLE schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    layers TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE schedule_overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id INTEGER NOT NULL REFERENCES schedules(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL
);
CREATE INDEX schedule_overrides_range ON schedule_overrides (schedule_id, ends_at);
