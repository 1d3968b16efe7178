-- Retention, deletion queue, the vault's system key, and the audit log.

ALTER TABLE tenants ADD COLUMN inactivity_days BIGINT NOT NULL DEFAULT 14;

-- Days a document is kept after its application closes, per tenant and
-- category; categories without a row use the documented defaults.
CREATE TABLE retention_policies (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    category     TEXT NOT NULL,
    retain_days  BIGINT NOT NULL CHECK (retain_days >= 0),
    PRIMARY KEY (tenant_id, category)
);

-- Blobs whose document rows (and wrapped keys) are gone, waiting to be
-- removed from the blob store. Written in the same transaction that deletes
-- the rows, drained afterwards, so deletions resume after a crash.
CREATE TABLE deleted_blobs (
    blob_name   TEXT PRIMARY KEY,
    deleted_at  BIGINT NOT NULL
);

-- The vault's own keys, wrapped under a root key version.
CREATE TABLE system_keys (
    name              TEXT PRIMARY KEY,
    root_key_version  BIGINT NOT NULL,
    wrapped_key       BYTEA NOT NULL
);

-- The audit log: append-only, each record MACed over its fields and the
-- previous record's MAC. audit_head serialises appends (one row).
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    tenant_id  TEXT,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    mac        BYTEA NOT NULL
);
CREATE INDEX audit_by_tenant ON audit_log (tenant_id, seq);

CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    mac  BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, mac) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
