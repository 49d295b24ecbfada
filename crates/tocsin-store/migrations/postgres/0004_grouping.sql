-- One alert-rules document (grouping, urgency rules) per service; none: the defaults.
CREATE TABLE service_alert_rules (
    service_id BIGINT PRIMARY KEY REFERENCES services(id) ON DELETE CASCADE,
    rules TEXT NOT NULL
);

-- The group an incident was opened for, so later alerts with the same key can join it.
CREATE TABLE incident_groups (
    incident_id BIGINT PRIMARY KEY REFERENCES incidents(id),
    service_id BIGINT NOT NULL REFERENCES services(id),
    group_key TEXT NOT NULL,
    opened_at BIGINT NOT NULL
);
CREATE INDEX incident_groups_key ON incident_groups (service_id, group_key, opened_at);
