-- Postmortems (issue 9): one per incident, or one for several related
-- incidents (an incident belongs to at most one). The body is Markdown; every
-- saved edit is a revision kept with its author, and `revision` is the
-- current one's number, which an edit names as its base to detect
-- concurrent edits.
CREATE TABLE postmortems (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'draft',
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    published_at INTEGER
);
CREATE INDEX postmortems_status ON postmortems (status, updated_at);

CREATE TABLE postmortem_incidents (
    postmortem_id INTEGER NOT NULL REFERENCES postmortems(id),
    incident_id INTEGER NOT NULL UNIQUE REFERENCES incidents(id)
);
CREATE INDEX postmortem_incidents_pm ON postmortem_incidents (postmortem_id);

CREATE TABLE postmortem_revisions (
    postmortem_id INTEGER NOT NULL REFERENCES postmortems(id),
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    author_id INTEGER REFERENCES users(id),
    author TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (postmortem_id, revision)
);

CREATE TABLE postmortem_reviewers (
    postmortem_id INTEGER NOT NULL REFERENCES postmortems(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    added_at INTEGER NOT NULL,
    approved_at INTEGER,
    PRIMARY KEY (postmortem_id, user_id)
);

-- Action items: `due_date` is a calendar day (YYYY-MM-DD, UTC); an open item
-- past it reminds its owner at most once a day (`last_reminded_at`).
CREATE TABLE action_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    postmortem_id INTEGER NOT NULL REFERENCES postmortems(id),
    incident_id INTEGER REFERENCES incidents(id),
    title TEXT NOT NULL,
    owner_id INTEGER REFERENCES users(id),
    due_date TEXT,
    priority TEXT NOT NULL DEFAULT 'medium',
    status TEXT NOT NULL DEFAULT 'open',
    external_url TEXT,
    last_reminded_at INTEGER,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX action_items_postmortem ON action_items (postmortem_id);
CREATE INDEX action_items_due ON action_items (status, due_date);

-- The admins' postmortem template (JSON `Template`); no row: the default.
CREATE TABLE postmortem_template (
    id INTEGER PRIMARY KEY,
    template TEXT NOT NULL,
    updated_by INTEGER REFERENCES users(id),
    updated_at INTEGER NOT NULL
);
