-- Shift-swap requests: a user on call asks to be covered for a time range;
-- another accepts (which creates an override in the same transaction), the user
-- it was offered to declines, or the requester cancels. `status` is what was
-- decided (open, accepted, declined, cancelled); an open request whose start has
-- passed reads as expired, computed at read time, so no timer has to flip it.
-- `override_id` is the override an acceptance created; it keeps naming it after
-- that override is deleted (the deletion is its own event), hence no reference.
CREATE TABLE shift_swap_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id INTEGER NOT NULL REFERENCES schedules(id),
    requested_by INTEGER NOT NULL REFERENCES users(id),
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    note TEXT NOT NULL,
    offered_to INTEGER REFERENCES users(id),
    status TEXT NOT NULL,
    accepted_by INTEGER REFERENCES users(id),
    accepted_at INTEGER,
    override_id INTEGER,
    closed_by INTEGER REFERENCES users(id),
    closed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX shift_swap_requests_schedule ON shift_swap_requests (schedule_id, status, starts_at);
