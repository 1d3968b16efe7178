-- Share links: one document, view-only, limited by time and by views.
-- Only the SHA-256 of the token's 256-bit secret is stored.
CREATE TABLE share_links (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    document_id TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    max_views   BIGINT NOT NULL CHECK (max_views > 0),
    views       BIGINT NOT NULL DEFAULT 0,
    revoked_at  BIGINT
);
CREATE INDEX share_links_by_document ON share_links (tenant_id, document_id);
