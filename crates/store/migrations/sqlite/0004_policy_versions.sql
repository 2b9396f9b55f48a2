-- Policy bundle versions: every upload that passed validation, with its author, time and content hash. One
-- version per tenant is active (the one requests are decided with); promotion and rollback move that mark.
CREATE TABLE policy_versions (
    id            TEXT   NOT NULL PRIMARY KEY,
    tenant_id     TEXT   NOT NULL,
    author        TEXT   NOT NULL,
    created_at_ms INTEGER NOT NULL,
    content_hash  TEXT   NOT NULL,
    files         TEXT   NOT NULL,
    summary       TEXT   NOT NULL,
    active        INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX policy_versions_tenant ON policy_versions (tenant_id, created_at_ms);
