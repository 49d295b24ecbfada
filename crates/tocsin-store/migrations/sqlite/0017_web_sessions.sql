-- Web UI sign-ins. The cookie carries a random secret; only its SHA-256 is kept.
-- `csrf` is the session's form token (every form posts it back). A session ends
-- at `expires_at` (absolute), after `idle` of no use, or at sign-out (row deleted).
CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
