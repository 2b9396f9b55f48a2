-- Signed checkpoints of each audit chain: the node signs (chain_id, seq, hash) of its head periodically, so
-- that rewriting the chain up to a checkpoint, or cutting it short, is detected.
CREATE TABLE audit_checkpoints (
    chain_id    TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    hash        BYTEA  NOT NULL,
    ts_ms       BIGINT NOT NULL,
    public_key  TEXT   NOT NULL,
    signature   TEXT   NOT NULL,
    PRIMARY KEY (chain_id, seq)
);
