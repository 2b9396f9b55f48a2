-- License keys and other credentials, stored only by their keyed fingerprint (HMAC-SHA256 with the node secret):
-- the key itself is never stored. A revocation time in the future is a scheduled revocation (rotation overlap).
CREATE TABLE credentials (
    key_id             TEXT    NOT NULL PRIMARY KEY,
    fingerprint        TEXT    NOT NULL UNIQUE,
    tenant_id          TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    service_name       TEXT,
    service_type       TEXT,
    tier               TEXT    NOT NULL,
    environment        TEXT    NOT NULL,
    permissions        TEXT    NOT NULL,
    issued_at_ms       BIGINT  NOT NULL,
    expires_at_ms      BIGINT  NOT NULL,
    revoked_at_ms      BIGINT,
    revocation_reason  TEXT,
    replaced_by        TEXT,
    created_at_ms      BIGINT  NOT NULL
);

CREATE INDEX credentials_tenant ON credentials (tenant_id);
