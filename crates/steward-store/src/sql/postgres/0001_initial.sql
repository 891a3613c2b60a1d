-- steward schema v1 (PostgreSQL).
CREATE TABLE parties (
    id           BIGSERIAL PRIMARY KEY,
    handle       TEXT NOT NULL UNIQUE,
    display_name TEXT,
    kind         TEXT NOT NULL CHECK (kind IN ('person', 'team')),
    team_id      BIGINT REFERENCES parties(id),
    status       TEXT NOT NULL CHECK (status IN ('active', 'departed'))
);

CREATE SEQUENCE identities_id_seq;
CREATE TABLE identities (
    id                   BIGINT PRIMARY KEY DEFAULT nextval('identities_id_seq'),
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    system               TEXT NOT NULL,
    external_id          TEXT,
    environment          TEXT NOT NULL,
    tier                 TEXT NOT NULL CHECK (tier IN ('critical', 'high', 'medium', 'low')),
    state                TEXT NOT NULL,
    purpose              TEXT,
    scope                JSONB NOT NULL,
    labels               JSONB NOT NULL,
    business_owner_id    BIGINT REFERENCES parties(id),
    technical_steward_id BIGINT REFERENCES parties(id),
    control_owner_id     BIGINT REFERENCES parties(id),
    created_at           TIMESTAMPTZ NOT NULL,
    expires_at           TIMESTAMPTZ,
    review_due           DATE,
    last_attested_at     TIMESTAMPTZ,
    last_used_at         TIMESTAMPTZ,
    last_rotated_at      TIMESTAMPTZ,
    source               TEXT NOT NULL,
    observed_at          TIMESTAMPTZ NOT NULL,
    -- (name, system) also serves lookups by bare name.
    CONSTRAINT identities_name_system_key UNIQUE (name, system)
);
ALTER SEQUENCE identities_id_seq OWNED BY identities.id;
-- Serves listings filtered by system and tier in their output order.
CREATE INDEX identities_system_tier_name ON identities (system, tier, name);

CREATE TABLE identity_backup_approvers (
    identity_id BIGINT NOT NULL REFERENCES identities(id),
    party_id    BIGINT NOT NULL REFERENCES parties(id),
    position    INTEGER NOT NULL,
    PRIMARY KEY (identity_id, party_id)
);

CREATE SEQUENCE credentials_id_seq;
CREATE TABLE credentials (
    id           BIGINT PRIMARY KEY DEFAULT nextval('credentials_id_seq'),
    identity_id  BIGINT NOT NULL REFERENCES identities(id),
    kind         TEXT NOT NULL,
    public_id    TEXT,
    fingerprint  TEXT,
    preview      TEXT,
    status       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
ALTER SEQUENCE credentials_id_seq OWNED BY credentials.id;
CREATE INDEX credentials_identity ON credentials (identity_id);
CREATE INDEX credentials_fingerprint ON credentials (fingerprint) WHERE fingerprint IS NOT NULL;

CREATE TABLE locations (
    id            BIGSERIAL PRIMARY KEY,
    credential_id BIGINT REFERENCES credentials(id),
    fingerprint   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    locator       TEXT NOT NULL,
    first_seen    TIMESTAMPTZ NOT NULL,
    last_seen     TIMESTAMPTZ NOT NULL,
    removed_at    TIMESTAMPTZ,
    UNIQUE (fingerprint, kind, locator)
);
CREATE INDEX locations_credential ON locations (credential_id);

CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id   BIGINT,
    subject_name TEXT NOT NULL,
    reason       TEXT,
    before       TEXT,
    after        TEXT,
    prev_hash    BYTEA NOT NULL,
    hash         BYTEA NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject_kind, subject_id);

CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    head_hash  BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    signature  BYTEA NOT NULL
);

-- The audit trail is append-only. (verify still catches edits made after dropping these.)
CREATE FUNCTION steward_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION steward_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION steward_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION steward_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION steward_append_only();
