-- Envelope encryption: data keys, each stored only sealed by a master key that never touches the database. The
-- newest key that is not retired seals new data; older keys keep opening what they sealed.
CREATE TABLE data_keys (
    id             TEXT    NOT NULL PRIMARY KEY,
    master_key_id  TEXT    NOT NULL,
    wrapped        BLOB    NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    retired_at_ms  INTEGER
) STRICT;

-- Data subjects: the end users named in audit records. Records carry only the random subject_id and the user's
-- identifiers sealed with the subject's own key; erasure destroys the key (crypto-shredding) and the lookup,
-- so the records, and the hash chain over them, stay as they are but no longer say who. The tombstone row is
-- deleted for good after the grace period (purge_after_ms).
CREATE TABLE subjects (
    subject_id      TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL,
    lookup          TEXT    UNIQUE,
    sealed_key      BLOB,
    sealed_profile  BLOB,
    restricted      INTEGER NOT NULL DEFAULT 0,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    erased_at_ms    INTEGER,
    purge_after_ms  INTEGER
) STRICT;

CREATE INDEX subjects_tenant ON subjects (tenant_id);

-- Connector and provider credentials: one sealed secret per tenant and connector, never returned by any API.
CREATE TABLE connector_secrets (
    tenant_id      TEXT    NOT NULL,
    connector      TEXT    NOT NULL,
    sealed         BLOB    NOT NULL,
    created_by     TEXT    NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, connector)
) STRICT;

-- Retention horizons: a chain whose oldest records were deleted by retention restarts verification after
-- (through_seq, through_hash), a statement signed by the node's audit key like a checkpoint.
CREATE TABLE audit_horizons (
    chain_id      TEXT    NOT NULL PRIMARY KEY,
    through_seq   INTEGER NOT NULL,
    through_hash  BLOB    NOT NULL,
    ts_ms         INTEGER NOT NULL,
    public_key    TEXT    NOT NULL,
    signature     TEXT    NOT NULL
) STRICT;
