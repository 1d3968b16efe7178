-- Tenants, applicants (with their wrapped keys) and documents.
-- Ids are hyphenated UUID text; times are Unix milliseconds (UTC).
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE applicants (
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    applicant_id      TEXT NOT NULL,
    key_version       BIGINT NOT NULL,
    root_key_version  BIGINT NOT NULL,
    wrapped_key       BYTEA NOT NULL,
    created_at        BIGINT NOT NULL,
    last_activity_at  BIGINT NOT NULL,
    closed_at         BIGINT,
    legal_hold        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, applicant_id)
);

CREATE TABLE documents (
    tenant_id              TEXT NOT NULL,
    id                     TEXT NOT NULL,
    applicant_id           TEXT NOT NULL,
    blob_name              TEXT NOT NULL UNIQUE,
    state                  TEXT NOT NULL CHECK (state IN ('pending', 'committed')),
    category               TEXT NOT NULL,
    content_type           TEXT NOT NULL,
    file_name              BYTEA,
    header                 BYTEA NOT NULL,
    wrapped_key            BYTEA NOT NULL,
    applicant_key_version  BIGINT NOT NULL,
    plaintext_len          BIGINT,
    ciphertext_len         BIGINT,
    sha256                 BYTEA,
    legal_hold             BIGINT NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL,
    committed_at           BIGINT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, applicant_id) REFERENCES applicants (tenant_id, applicant_id),
    CHECK (state = 'pending' OR (plaintext_len IS NOT NULL AND ciphertext_len IS NOT NULL AND committed_at IS NOT NULL))
);

CREATE INDEX documents_by_applicant ON documents (tenant_id, applicant_id, state, created_at);
CREATE INDEX documents_by_state ON documents (state, created_at);
