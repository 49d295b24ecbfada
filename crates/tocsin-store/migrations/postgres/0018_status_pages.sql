-- Status pages: what customers (public pages) and staff (internal pages) read.
-- `version` is bumped in every transaction that changes anything the page shows,
-- so each node's cache of rendered pages knows when to render again.
CREATE TABLE status_pages (
    id BIGSERIAL PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    visibility TEXT NOT NULL,
    domain TEXT UNIQUE,
    time_zone TEXT NOT NULL,
    brand_color TEXT NOT NULL,
    support_url TEXT,
    allow_subscribers BIGINT NOT NULL DEFAULT 1,
    logo BYTEA,
    logo_type TEXT,
    logo_tag TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE status_component_groups (
    id BIGSERIAL PRIMARY KEY,
    page_id BIGINT NOT NULL REFERENCES status_pages(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    position BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX status_component_groups_page ON status_component_groups (page_id);

CREATE TABLE status_components (
    id BIGSERIAL PRIMARY KEY,
    page_id BIGINT NOT NULL REFERENCES status_pages(id) ON DELETE CASCADE,
    group_id BIGINT REFERENCES status_component_groups(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    position BIGINT NOT NULL,
    status TEXT NOT NULL,
    show_uptime BIGINT NOT NULL DEFAULT 1,
    only_show_if_degraded BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX status_components_page ON status_components (page_id);

-- Services whose incidents propose a status for the component.
CREATE TABLE status_component_services (
    component_id BIGINT NOT NULL REFERENCES status_components(id) ON DELETE CASCADE,
    service_id BIGINT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    PRIMARY KEY (component_id, service_id)
);
CREATE INDEX status_component_services_service ON status_component_services (service_id);

-- Every status a component has had: one open row (ended_at NULL) per component.
CREATE TABLE status_component_history (
    id BIGSERIAL PRIMARY KEY,
    component_id BIGINT NOT NULL REFERENCES status_components(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX status_component_history_component ON status_component_history (component_id, started_at);

-- Published incidents and scheduled maintenances ("posts"), written for the
-- page; `incident_id` links one to the internal incident it is about.
CREATE TABLE status_posts (
    id BIGSERIAL PRIMARY KEY,
    page_id BIGINT NOT NULL REFERENCES status_pages(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    incident_id BIGINT REFERENCES incidents(id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    impact TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    monitoring_at BIGINT,
    resolved_at BIGINT,
    scheduled_for BIGINT,
    scheduled_until BIGINT,
    auto_start BIGINT NOT NULL DEFAULT 0,
    auto_complete BIGINT NOT NULL DEFAULT 0,
    remind_minutes BIGINT,
    reminded BIGINT NOT NULL DEFAULT 0,
    notify BIGINT NOT NULL DEFAULT 1,
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX status_posts_page ON status_posts (page_id, created_at);
CREATE INDEX status_posts_incident ON status_posts (incident_id);

CREATE TABLE status_post_components (
    post_id BIGINT NOT NULL REFERENCES status_posts(id) ON DELETE CASCADE,
    component_id BIGINT NOT NULL REFERENCES status_components(id) ON DELETE CASCADE,
    PRIMARY KEY (post_id, component_id)
);

-- Each update as published; `affected` is the JSON list of component changes
-- it made ({component_id, name, old_status, new_status}).
CREATE TABLE status_updates (
    id BIGSERIAL PRIMARY KEY,
    post_id BIGINT NOT NULL REFERENCES status_posts(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    affected TEXT NOT NULL DEFAULT '[]',
    notify BIGINT NOT NULL DEFAULT 1,
    display_at BIGINT NOT NULL,
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX status_updates_post ON status_updates (post_id, id);

-- Wording kept for common messages.
CREATE TABLE status_templates (
    id BIGSERIAL PRIMARY KEY,
    page_id BIGINT NOT NULL REFERENCES status_pages(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (page_id, name)
);

-- Email subscribers confirm (double opt-in) before anything but the
-- confirmation is sent; `salt` is in every link sent to them, so deleting the
-- row voids those links. Webhook subscribers are added by admins, confirmed.
-- `all_components` 0: only the components in status_subscriber_components.
CREATE TABLE status_subscribers (
    id BIGSERIAL PRIMARY KEY,
    page_id BIGINT NOT NULL REFERENCES status_pages(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    salt TEXT NOT NULL,
    all_components BIGINT NOT NULL DEFAULT 1,
    confirmed_at BIGINT,
    confirmation_sent_at BIGINT,
    created_at BIGINT NOT NULL
);
-- One subscription per address, whatever its case: `Ann@` and `ANN@` are one
-- mailbox, and must not each get a confirmation.
CREATE UNIQUE INDEX status_subscribers_address ON status_subscribers (page_id, kind, lower(address));

CREATE TABLE status_subscriber_components (
    subscriber_id BIGINT NOT NULL REFERENCES status_subscribers(id) ON DELETE CASCADE,
    component_id BIGINT NOT NULL REFERENCES status_components(id) ON DELETE CASCADE,
    PRIMARY KEY (subscriber_id, component_id)
);

-- The subscriber outbox: one row per message to one subscriber, unique by its
-- idempotency key, sent by the status-mail worker at its own pace (rate limit).
-- status: pending (due at next_attempt_at), sending (leased until
-- next_attempt_at), sent, failed, cancelled.
CREATE TABLE status_deliveries (
    id BIGSERIAL PRIMARY KEY,
    page_id BIGINT NOT NULL REFERENCES status_pages(id) ON DELETE CASCADE,
    subscriber_id BIGINT NOT NULL REFERENCES status_subscribers(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    post_id BIGINT REFERENCES status_posts(id) ON DELETE CASCADE,
    update_id BIGINT REFERENCES status_updates(id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    sent_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX status_deliveries_due ON status_deliveries (status, next_attempt_at);
CREATE INDEX status_deliveries_subscriber ON status_deliveries (subscriber_id);
