-- iCalendar feeds of on-call shifts, one per schedule and one per user, each at a
-- secret-token URL. Only the token's SHA-256 is kept (and a short prefix to tell
-- feeds apart); rotating replaces the hash, so the old URL stops working at once.
CREATE TABLE calendar_feeds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('schedule', 'user')),
    schedule_id INTEGER UNIQUE REFERENCES schedules(id) ON DELETE CASCADE,
    user_id INTEGER UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    rotated_at INTEGER,
    CHECK ((kind = 'schedule') = (schedule_id IS NOT NULL)),
    CHECK ((kind = 'user') = (user_id IS NOT NULL))
);
