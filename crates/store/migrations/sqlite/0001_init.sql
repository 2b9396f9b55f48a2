-- Audit trail: one row per decision or audited call. Rows form one hash chain per writer (chain_id), so that
-- several nodes can write at once and every chain still verifies on its own.
CREATE TABLE audit_records (
    id          TEXT    NOT NULL PRIMARY KEY,
    chain_id    TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    ts_ms       INTEGER NOT NULL,
    tenant_id   TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    prev_hash   BLOB    NOT NULL,
    hash        BLOB    NOT NULL,
    UNIQUE (chain_id, seq)
) STRICT;

CREATE INDEX audit_records_tenant_ts ON audit_records (tenant_id, ts_ms);
CREATE INDEX audit_records_ts ON audit_records (ts_ms);
