-- steward schema v1 (SQLite). Instants are INTEGER microseconds since the Unix epoch (UTC);
-- calendar dates are TEXT YYYY-MM-DD; scope and labels are JSON text.
CREATE TABLE parties (
    id           INTEGER PRIMARY KEY,
    handle       TEXT NOT NULL UNIQUE,
    display_name TEXT,
    kind         TEXT NOT NULL CHECK (kind IN ('person', 'team')),
    team_id      INTEGER REFERENCES parties(id),
    status       TEXT NOT NULL CHECK (status IN ('active', 'departed'))
);

CREATE TABLE identities (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    system               TEXT NOT NULL,
    external_id          TEXT,
    environment          TEXT NOT NULL,
    tier                 TEXT NOT NULL CHECK (tier IN ('critical', 'high', 'medium', 'low')),
    state                TEXT NOT NULL,
    purpose              TEXT,
    scope                TEXT NOT NULL,
    labels               TEXT NOT NULL,
    business_owner_id    INTEGER REFERENCES parties(id),
    technical_steward_id INTEGER REFERENCES parties(id),
    control_owner_id     INTEGER REFERENCES parties(id),
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER,
    review_due           TEXT,
    last_attested_at     INTEGER,
    last_used_at         INTEGER,
    last_rotated_at      INTEGER,
    source               TEXT NOT NULL,
    observed_at          INTEGER NOT NULL,
    -- (name, system) also serves lookups by bare name.
    UNIQUE (name, system)
);
-- Serves listings filtered by system and tier in their output order.
CREATE INDEX identities_system_tier_name ON identities (system, tier, name);

CREATE TABLE identity_backup_approvers (
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    party_id    INTEGER NOT NULL REFERENCES parties(id),
    position    INTEGER NOT NULL,
    PRIMARY KEY (identity_id, party_id)
) WITHOUT ROWID;

CREATE TABLE credentials (
    id           INTEGER PRIMARY KEY,
    identity_id  INTEGER NOT NULL REFERENCES identities(id),
    kind         TEXT NOT NULL,
    public_id    TEXT,
    fingerprint  TEXT,
    preview      TEXT,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX credentials_identity ON credentials (identity_id);
CREATE INDEX credentials_fingerprint ON credentials (fingerprint) WHERE fingerprint IS NOT NULL;

CREATE TABLE locations (
    id            INTEGER PRIMARY KEY,
    credential_id INTEGER REFERENCES credentials(id),
    fingerprint   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    locator       TEXT NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    removed_at    INTEGER,
    UNIQUE (fingerprint, kind, locator)
);
CREATE INDEX locations_credential ON locations (credential_id);

CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id   INTEGER,
    subject_name TEXT NOT NULL,
    reason       TEXT,
    before       TEXT,
    after        TEXT,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject_kind, subject_id);

CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY,
    head_hash  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    signature  BLOB NOT NULL
);

-- The audit trail is append-only. (verify still catches edits made after dropping these.)
CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_checkpoints_append_only_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_append_only_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
