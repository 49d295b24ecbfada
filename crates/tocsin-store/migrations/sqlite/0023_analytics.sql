-- Analytics (issue 9). `analytics_facts`: the instants of each incident as
-- typed columns, written by the store in the same transaction as the incident
-- (so reports read no JSON). `day` is the UTC day of declaration
-- (declared_at / 86400000). Alerts are joined at read time (first alert,
-- alert count).
CREATE TABLE analytics_facts (
    incident_id INTEGER PRIMARY KEY REFERENCES incidents(id),
    day INTEGER NOT NULL,
    declared_at INTEGER NOT NULL,
    severity TEXT NOT NULL,
    began_at INTEGER,
    noticed_at INTEGER NOT NULL,
    acknowledged_at INTEGER,
    mitigated_at INTEGER,
    resolved_at INTEGER
);
CREATE INDEX analytics_facts_declared ON analytics_facts (declared_at);

-- A version per UTC day, bumped in the transaction of any change that can
-- alter that day's numbers: an incident written (store code), an alert
-- attached to or moved between incidents or its first_seen changed, a service
-- moved to another team (triggers below).
CREATE TABLE analytics_days (
    day INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);

-- Daily rollups (JSON `Rollup`: counts and a DurationHistogram per metric):
-- kind `all` per severity, `service` and `team` over all severities
-- (severity ''). A day's rows are usable while `analytics_rolled.version`
-- equals its `analytics_days.version`; otherwise they are recomputed on demand.
CREATE TABLE analytics_rollups (
    day INTEGER NOT NULL,
    group_kind TEXT NOT NULL,
    group_id INTEGER NOT NULL,
    severity TEXT NOT NULL,
    rollup TEXT NOT NULL,
    PRIMARY KEY (group_kind, day, group_id, severity)
);
CREATE TABLE analytics_rolled (
    day INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);

-- How an alert was resolved (by its source or not), for noise.
CREATE INDEX events_entity ON events (entity, entity_id);
CREATE INDEX alerts_first_seen ON alerts (first_seen);

CREATE TRIGGER analytics_alert_added AFTER INSERT ON alerts
WHEN NEW.incident_id IS NOT NULL
BEGIN
    UPDATE analytics_days SET version = version + 1
    WHERE day IN (SELECT day FROM analytics_facts WHERE incident_id = NEW.incident_id);
END;

CREATE TRIGGER analytics_alert_moved AFTER UPDATE OF incident_id, first_seen ON alerts
BEGIN
    UPDATE analytics_days SET version = version + 1
    WHERE day IN (SELECT day FROM analytics_facts
                  WHERE incident_id = NEW.incident_id OR incident_id = OLD.incident_id);
END;

CREATE TRIGGER analytics_service_team AFTER UPDATE OF team_id ON services
WHEN OLD.team_id IS NOT NEW.team_id
BEGIN
    UPDATE analytics_days SET version = version + 1
    WHERE day IN (SELECT f.day FROM analytics_facts f
                  JOIN incident_services s ON s.incident_id = f.incident_id
                  WHERE s.service_id = NEW.id);
END;
