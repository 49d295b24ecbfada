-- Analytics (issue 9); see the SQLite migration for what each table holds.
CREATE TABLE analytics_facts (
    incident_id BIGINT PRIMARY KEY REFERENCES incidents(id),
    day BIGINT NOT NULL,
    declared_at BIGINT NOT NULL,
    severity TEXT NOT NULL,
    began_at BIGINT,
    noticed_at BIGINT NOT NULL,
    acknowledged_at BIGINT,
    mitigated_at BIGINT,
    resolved_at BIGINT
);
CREATE INDEX analytics_facts_declared ON analytics_facts (declared_at);

CREATE TABLE analytics_days (
    day BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE TABLE analytics_rollups (
    day BIGINT NOT NULL,
    group_kind TEXT NOT NULL,
    group_id BIGINT NOT NULL,
    severity TEXT NOT NULL,
    rollup TEXT NOT NULL,
    PRIMARY KEY (group_kind, day, group_id, severity)
);
CREATE TABLE analytics_rolled (
    day BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE INDEX events_entity ON events (entity, entity_id);
CREATE INDEX alerts_first_seen ON alerts (first_seen);

CREATE FUNCTION analytics_alert_touch() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.incident_id IS NOT NULL THEN
            UPDATE analytics_days SET version = version + 1
            WHERE day IN (SELECT day FROM analytics_facts WHERE incident_id = NEW.incident_id);
        END IF;
    ELSIF NEW.incident_id IS DISTINCT FROM OLD.incident_id OR NEW.first_seen IS DISTINCT FROM OLD.first_seen THEN
        UPDATE analytics_days SET version = version + 1
        WHERE day IN (SELECT day FROM analytics_facts
                      WHERE incident_id = NEW.incident_id OR incident_id = OLD.incident_id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER analytics_alert_touch AFTER INSERT OR UPDATE OF incident_id, first_seen ON alerts
FOR EACH ROW EXECUTE FUNCTION analytics_alert_touch();

CREATE FUNCTION analytics_service_team() RETURNS trigger AS $$
BEGIN
    IF NEW.team_id IS DISTINCT FROM OLD.team_id THEN
        UPDATE analytics_days SET version = version + 1
        WHERE day IN (SELECT f.day FROM analytics_facts f
                      JOIN incident_services s ON s.incident_id = f.incident_id
                      WHERE s.service_id = NEW.id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER analytics_service_team AFTER UPDATE OF team_id ON services
FOR EACH ROW EXECUTE FUNCTION analytics_service_team();
