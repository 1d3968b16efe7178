//! Metadata through `sqlx`: SQLite (the embedded default, in WAL mode) and
//! PostgreSQL (at scale), with one set of queries for both.
//!
//! Both databases run the same SQL text through `sqlx::Any` (`$n`
//! placeholders work on both); only the migrations differ (`BLOB` vs
//! `BYTEA`). Every query that touches a tenant's data takes the tenant id
//! and filters on it; the only unscoped queries are the operator's sweep,
//! which is crate-internal. No query text is built from input.

mod lifecycle;
mod rows;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};

pub(crate) use lifecycle::{RetentionRow, Tx, WrappedRow};
pub(crate) use rows::{ApplicantKeyRow, DocumentRow, NewDocument};

use crate::error::{Error, Result};
use crate::ids::{ApplicantId, DocumentId, TenantId};
use crate::store::BlobName;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DbKind {
    Sqlite,
    Postgres,
}

/// The metadata database.
#[derive(Clone, Debug)]
pub(crate) struct Metadata {
    pool: AnyPool,
    kind: DbKind,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Metadata {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`), creating a
    /// SQLite file if missing, and runs the migrations.
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (kind, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let sep = if rest.contains('?') { '&' } else { '?' };
            let url = if rest.contains("mode=") {
                url.to_owned()
            } else {
                format!("{url}{sep}mode=rwc")
            };
            (DbKind::Sqlite, url)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (DbKind::Postgres, url.to_owned())
        } else {
            return Err(Error::InvalidArgument(
                "metadata URL must start with sqlite: or postgres:",
            ));
        };
        let options: AnyConnectOptions = url
            .parse()
            .map_err(|_| Error::InvalidArgument("malformed metadata database URL"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if kind == DbKind::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if kind == DbKind::Sqlite {
                        // WAL for concurrent readers; FULL so that a
                        // committed transaction survives power loss; foreign
                        // keys on; wait rather than fail on a busy writer.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let migrator = match kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| Error::Database(sqlx::Error::Migrate(Box::new(e))))?;
        Ok(Self { pool, kind })
    }

    #[allow(dead_code)] // used by tests and the operator's health checks
    pub(crate) fn kind(&self) -> DbKind {
        self.kind
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (pending queries finish first).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Checks that the database answers.
    pub(crate) async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // -- tenants -----------------------------------------------------------

    pub(crate) async fn insert_tenant(&self, tx: &mut Tx, id: TenantId, name: &str) -> Result<()> {
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(name)
            .bind(now_ms())
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::AlreadyExists
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    pub(crate) async fn tenant_exists(&self, id: TenantId) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    // -- applicants --------------------------------------------------------

    pub(crate) async fn applicant_key(
        &self,
        tenant: TenantId,
        applicant: &ApplicantId,
    ) -> Result<Option<ApplicantKeyRow>> {
        let row = sqlx::query(
            "SELECT key_version, root_key_version, wrapped_key FROM applicants \
             WHERE tenant_id = $1 AND applicant_id = $2",
        )
        .bind(tenant.to_string())
        .bind(applicant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| ApplicantKeyRow::from_row(&r)).transpose()
    }

    /// Inserts the applicant with its first wrapped key unless a concurrent
    /// caller did so first (then the existing row wins).
    pub(crate) async fn insert_applicant_if_absent(
        &self,
        tenant: TenantId,
        applicant: &ApplicantId,
        key: &ApplicantKeyRow,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO applicants (tenant_id, applicant_id, key_version, root_key_version, \
             wrapped_key, created_at, last_activity_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (tenant_id, applicant_id) DO NOTHING",
        )
        .bind(tenant.to_string())
        .bind(applicant.as_str())
        .bind(i64::from(key.key_version))
        .bind(i64::from(key.root_key_version))
        .bind(key.wrapped_key.as_bytes().to_vec())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // -- documents ---------------------------------------------------------

    /// Records a document about to be uploaded. A pending row is invisible
    /// to every read; it exists so that a crash mid-upload leaves a trace
    /// the sweep can follow to the blob.
    pub(crate) async fn insert_pending(&self, d: &NewDocument) -> Result<()> {
        sqlx::query(
            "INSERT INTO documents (tenant_id, id, applicant_id, blob_name, state, category, \
             content_type, file_name, header, wrapped_key, applicant_key_version, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(d.tenant.to_string())
        .bind(d.id.to_string())
        .bind(d.applicant.as_str())
        .bind(d.blob.as_string())
        .bind(d.category.as_str())
        .bind(d.content_type.as_str())
        .bind(d.file_name.clone())
        .bind(d.header.to_vec())
        .bind(d.wrapped_key.as_bytes().to_vec())
        .bind(i64::from(d.applicant_key_version))
        .bind(d.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes a pending document visible. Fails if the row is no longer
    /// pending (for example a sweep removed it as stale).
    pub(crate) async fn commit_document(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        id: DocumentId,
        plaintext_len: u64,
        ciphertext_len: u64,
        sha256: Option<[u8; 32]>,
    ) -> Result<i64> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE documents SET state = 'committed', plaintext_len = $3, ciphertext_len = $4, \
             sha256 = $5, committed_at = $6 WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .bind(to_i64(plaintext_len)?)
        .bind(to_i64(ciphertext_len)?)
        .bind(sha256.map(|h| h.to_vec()))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::Corrupt(
                "the pending document row disappeared during upload",
            ));
        }
        Ok(now)
    }

    /// Removes a pending row (an abandoned upload).
    /// Returns whether a pending row was removed (false if it had been
    /// committed or removed meanwhile).
    pub(crate) async fn delete_pending(&self, tenant: TenantId, id: DocumentId) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM documents WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A committed document of `tenant`; [`Error::NotFound`] otherwise.
    pub(crate) async fn document(&self, tenant: TenantId, id: DocumentId) -> Result<DocumentRow> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM {} WHERE d.tenant_id = $1 AND d.id = $2 AND d.state = 'committed'",
            rows::DOCUMENT_COLUMNS,
            rows::DOCUMENT_FROM
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound)?;
        DocumentRow::from_row(&row)
    }

    /// Committed documents of one applicant, oldest first, after the
    /// `(created_at, id)` cursor.
    pub(crate) async fn list_documents(
        &self,
        tenant: TenantId,
        applicant: &ApplicantId,
        after: Option<(i64, DocumentId)>,
        limit: u32,
    ) -> Result<Vec<DocumentRow>> {
        let (after_ts, after_id) = after
            .map(|(t, id)| (t, id.to_string()))
            .unwrap_or((i64::MIN, String::new()));
        let rows = sqlx::query(&format!(
            "SELECT {} FROM {} WHERE d.tenant_id = $1 AND d.applicant_id = $2 \
             AND d.state = 'committed' AND (d.created_at > $3 OR (d.created_at = $3 AND d.id > $4)) \
             ORDER BY d.created_at, d.id LIMIT $5",
            rows::DOCUMENT_COLUMNS,
            rows::DOCUMENT_FROM
        ))
        .bind(tenant.to_string())
        .bind(applicant.as_str())
        .bind(after_ts)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(DocumentRow::from_row).collect()
    }

    // -- sweep (operator, across tenants) ----------------------------------

    /// Pending rows created before `cutoff_ms`.
    pub(crate) async fn stale_pending(
        &self,
        cutoff_ms: i64,
    ) -> Result<Vec<(TenantId, DocumentId, BlobName)>> {
        let rows = sqlx::query(
            "SELECT tenant_id, id, blob_name FROM documents WHERE state = 'pending' AND created_at < $1",
        )
        .bind(cutoff_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let t = TenantId::parse(&r.try_get::<String, _>(0)?)
                    .map_err(|_| Error::Corrupt("tenant id"))?;
                let d = DocumentId::parse(&r.try_get::<String, _>(1)?)
                    .map_err(|_| Error::Corrupt("document id"))?;
                Ok((t, d, BlobName::parse(&r.try_get::<String, _>(2)?)?))
            })
            .collect()
    }

    /// Whether any row (pending or committed) names `blob`.
    pub(crate) async fn blob_has_row(&self, blob: BlobName) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM documents WHERE blob_name = $1")
            .bind(blob.as_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Every row's blob name, and whether the row is committed.
    pub(crate) async fn all_blob_names(&self) -> Result<Vec<(BlobName, bool)>> {
        let rows = sqlx::query("SELECT blob_name, state FROM documents")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    BlobName::parse(&r.try_get::<String, _>(0)?)?,
                    r.try_get::<String, _>(1)? == "committed",
                ))
            })
            .collect()
    }
}

pub(crate) fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::InvalidArgument("value too large to store"))
}
