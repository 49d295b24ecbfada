-- Action links ("Acknowledge" / "Resolve" in a page's message) are signed with a
-- key every node shares. The store creates it, random, on first use: each purpose
-- has one key.
CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    purpose TEXT NOT NULL UNIQUE,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- A link works once: its nonce is recorded in the transaction that acts on it.
-- Rows whose link has expired may be deleted; an expired link is refused anyway.
CREATE TABLE used_action_tokens (
    nonce TEXT PRIMARY KEY,
    used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    incident_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    user_id INTEGER NOT NULL
);
