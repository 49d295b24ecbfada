-- A contact method is proved by a 6-digit code sent to it. Only a hash of the
-- code is kept (SHA-256 over the row's random salt and the code), with when it
-- expires, how many wrong tries it has had, and when it was sent (one code a
-- minute). `tested_at`: the last test notification (one a minute).
ALTER TABLE contact_methods ADD COLUMN verify_salt TEXT;
ALTER TABLE contact_methods ADD COLUMN verify_code_hash TEXT;
ALTER TABLE contact_methods ADD COLUMN verify_expires_at INTEGER;
ALTER TABLE contact_methods ADD COLUMN verify_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contact_methods ADD COLUMN verify_sent_at INTEGER;
ALTER TABLE contact_methods ADD COLUMN tested_at INTEGER;
