-- API keys: random 256-bit secrets, stored only as SHA-256 hashes.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    role        TEXT NOT NULL CHECK (role IN ('admin', 'agent', 'uploader', 'auditor', 'purge')),
    secret_hash BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);
