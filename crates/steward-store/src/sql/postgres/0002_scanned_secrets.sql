-- Secrets that `steward scan --record` found: the rule that found each one and a redacted
-- preview, so that a secret no credential of the inventory holds can still be reported
-- (unmanaged). Its copies are the `locations` rows with the same fingerprint.
CREATE TABLE scanned_secrets (
    id          BIGSERIAL PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    rule_id     TEXT NOT NULL,
    rule_name   TEXT NOT NULL,
    preview     TEXT NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL
);
