-- Delivery of handed notification requests: each row of the outbox goes
-- pending -> sending -> sent | failed. While sending, next_attempt_at is the end
-- of the sender's lease (a row whose lease ran out was cut off mid-send and is
-- sent again under the same idempotency key); while pending, it is when the next
-- attempt is due. Rows handed before this migration keep a NULL delivery state
-- and are not sent.
ALTER TABLE notification_requests ADD COLUMN delivery TEXT;
ALTER TABLE notification_requests ADD COLUMN channel TEXT;
ALTER TABLE notification_requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notification_requests ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE notification_requests ADD COLUMN provider_id TEXT;
ALTER TABLE notification_requests ADD COLUMN last_response TEXT;
ALTER TABLE notification_requests ADD COLUMN delivered_at INTEGER;
ALTER TABLE notification_requests ADD COLUMN failed_at INTEGER;
CREATE INDEX notification_requests_delivery ON notification_requests (delivery, next_attempt_at);

-- One row per attempt, with what the provider answered.
CREATE TABLE notification_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL REFERENCES notification_requests(id),
    attempt INTEGER NOT NULL,
    channel TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    http_status INTEGER,
    provider_id TEXT,
    detail TEXT,
    retry_at INTEGER,
    UNIQUE (request_id, attempt)
);
