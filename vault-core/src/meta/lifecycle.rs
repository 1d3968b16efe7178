//! Queries behind retention, purge, erasure, rotation, the deletion queue,
//! the system key and the audit log.

use sqlx::{Any, Row, Transaction};

use super::{Metadata, now_ms, to_i64};
use crate::audit::{AuditRecord, Event, record_mac};
use crate::category::Category;
use crate::error::{Error, Result};
use crate::ids::{ApplicantId, DocumentId, TenantId};
use crate::keys::WrappedKey;
use crate::secret::Secret32;
use crate::store::BlobName;

/// What retention needs to know about one committed document.
#[derive(Debug, Clone)]
pub(crate) struct RetentionRow {
    pub(crate) id: DocumentId,
    pub(crate) category: Category,
    pub(crate) doc_hold: bool,
    pub(crate) applicant_hold: bool,
    pub(crate) closed_at: Option<i64>,
    pub(crate) last_activity_at: i64,
}

/// One wrapped key to rewrap during a root key rotation.
#[derive(Debug)]
pub(crate) struct WrappedRow {
    pub(crate) tenant: Option<TenantId>,
    pub(crate) name: String,
    pub(crate) key_version: u32,
    pub(crate) root_key_version: u32,
    pub(crate) wrapped: WrappedKey,
}

pub(crate) type Tx = Transaction<'static, Any>;

impl Metadata {
    pub(crate) async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }

    // -- audit ---------------------------------------------------------------

    /// Appends an audit record inside `tx`. Must be the transaction's first
    /// statement: it takes the write lock (SQLite) or the head row's lock
    /// (PostgreSQL), which serialises appends. Returns (seq, mac).
    pub(crate) async fn append_audit(
        &self,
        tx: &mut Tx,
        key: &Secret32,
        e: &Event<'_>,
    ) -> Result<(u64, [u8; 32])> {
        sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1")
            .execute(&mut **tx)
            .await?;
        let row = sqlx::query("SELECT seq, mac FROM audit_head WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?;
        let seq =
            u64::try_from(row.try_get::<i64, _>(0)?).map_err(|_| Error::Corrupt("audit seq"))?;
        let prev: [u8; 32] = row
            .try_get::<Vec<u8>, _>(1)?
            .try_into()
            .map_err(|_| Error::Corrupt("audit head mac"))?;
        let at = now_ms();
        let mac = record_mac(
            key,
            seq,
            e.tenant,
            at,
            e.actor.as_str(),
            e.action,
            &e.target,
            e.outcome.as_str(),
            &prev,
        );
        sqlx::query("UPDATE audit_head SET mac = $1 WHERE id = 1")
            .bind(mac.to_vec())
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO audit_log (seq, tenant_id, at, actor, action, target, outcome, mac) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(to_i64(seq)?)
        .bind(e.tenant.map(|t| t.to_string()))
        .bind(at)
        .bind(e.actor.as_str())
        .bind(e.action)
        .bind(&e.target)
        .bind(e.outcome.as_str())
        .bind(mac.to_vec())
        .execute(&mut **tx)
        .await?;
        Ok((seq, mac))
    }

    /// Takes the audit head's lock without appending (the write lock on
    /// SQLite, the head row's lock on PostgreSQL): checks made after it in
    /// the same transaction cannot be overtaken by another audited action.
    pub(crate) async fn lock_audit(&self, tx: &mut Tx) -> Result<()> {
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Inside `tx`: whether the document or its applicant is on hold;
    /// `None` if the document does not exist in `tenant`.
    pub(crate) async fn document_held_tx(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        id: DocumentId,
    ) -> Result<Option<bool>> {
        let row = sqlx::query(
            "SELECT d.legal_hold, a.legal_hold FROM documents d JOIN applicants a \
             ON a.tenant_id = d.tenant_id AND a.applicant_id = d.applicant_id \
             WHERE d.tenant_id = $1 AND d.id = $2 AND d.state = 'committed'",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|r| Ok(r.try_get::<i64, _>(0)? != 0 || r.try_get::<i64, _>(1)? != 0))
            .transpose()
    }

    /// Inside `tx`: whether the applicant, or any document of theirs, is on
    /// hold; `None` if the applicant does not exist in `tenant`.
    pub(crate) async fn applicant_held_tx(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        a: &ApplicantId,
    ) -> Result<Option<bool>> {
        let hold: Option<i64> = sqlx::query_scalar(
            "SELECT legal_hold FROM applicants WHERE tenant_id = $1 AND applicant_id = $2",
        )
        .bind(tenant.to_string())
        .bind(a.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        let Some(hold) = hold else { return Ok(None) };
        let docs: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM documents WHERE tenant_id = $1 AND applicant_id = $2 AND legal_hold <> 0",
        )
        .bind(tenant.to_string())
        .bind(a.as_str())
        .fetch_one(&mut **tx)
        .await?;
        Ok(Some(hold != 0 || docs > 0))
    }

    /// Inside `tx`: the current retention facts of those of `ids` that still
    /// exist, committed, in `tenant`.
    pub(crate) async fn retention_rows_tx(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        ids: &[DocumentId],
    ) -> Result<Vec<RetentionRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT d.id, d.category, d.legal_hold, a.legal_hold, a.closed_at, a.last_activity_at \
                 FROM documents d JOIN applicants a ON a.tenant_id = d.tenant_id AND a.applicant_id = d.applicant_id \
                 WHERE d.tenant_id = $1 AND d.id = $2 AND d.state = 'committed'",
            )
            .bind(tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(r) = row {
                out.push(retention_row(&r)?);
            }
        }
        Ok(out)
    }

    /// Audit records after `after_seq`, oldest first; only `tenant`'s when
    /// given.
    pub(crate) async fn audit_records(
        &self,
        tenant: Option<TenantId>,
        after_seq: u64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        let rows =
            match tenant {
                Some(t) => sqlx::query(
                    "SELECT seq, tenant_id, at, actor, action, target, outcome, mac FROM audit_log \
                     WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(t.to_string())
                .bind(to_i64(after_seq)?)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
                None => sqlx::query(
                    "SELECT seq, tenant_id, at, actor, action, target, outcome, mac FROM audit_log \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(to_i64(after_seq)?)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
            };
        rows.iter()
            .map(|r| {
                let tenant: Option<String> = r.try_get(1)?;
                Ok(AuditRecord {
                    seq: u64::try_from(r.try_get::<i64, _>(0)?)
                        .map_err(|_| Error::Corrupt("audit seq"))?,
                    tenant: tenant
                        .map(|t| TenantId::parse(&t))
                        .transpose()
                        .map_err(|_| Error::Corrupt("audit tenant"))?,
                    at_ms: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    action: r.try_get(4)?,
                    target: r.try_get(5)?,
                    outcome: r.try_get(6)?,
                    mac: r
                        .try_get::<Vec<u8>, _>(7)?
                        .try_into()
                        .map_err(|_| Error::Corrupt("audit mac"))?,
                })
            })
            .collect()
    }

    pub(crate) async fn audit_head(&self) -> Result<(u64, [u8; 32])> {
        let row = sqlx::query("SELECT seq, mac FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((
            u64::try_from(row.try_get::<i64, _>(0)?).map_err(|_| Error::Corrupt("audit seq"))?,
            row.try_get::<Vec<u8>, _>(1)?
                .try_into()
                .map_err(|_| Error::Corrupt("audit head mac"))?,
        ))
    }

    // -- system key ------------------------------------------------------------

    pub(crate) async fn system_key(&self, name: &str) -> Result<Option<(u32, WrappedKey)>> {
        let row =
            sqlx::query("SELECT root_key_version, wrapped_key FROM system_keys WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok((
                u32::try_from(r.try_get::<i64, _>(0)?)
                    .map_err(|_| Error::Corrupt("root key version"))?,
                WrappedKey::from_bytes(&r.try_get::<Vec<u8>, _>(1)?)?,
            ))
        })
        .transpose()
    }

    pub(crate) async fn insert_system_key_if_absent(
        &self,
        name: &str,
        root: u32,
        wrapped: &WrappedKey,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO system_keys (name, root_key_version, wrapped_key) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(i64::from(root))
        .bind(wrapped.as_bytes().to_vec())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // -- applicants and holds --------------------------------------------------

    pub(crate) async fn set_applicant_closed(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        a: &ApplicantId,
        closed_at: Option<i64>,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE applicants SET closed_at = $3, last_activity_at = $4 WHERE tenant_id = $1 AND applicant_id = $2",
        )
        .bind(tenant.to_string())
        .bind(a.as_str())
        .bind(closed_at)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records activity on an application inside `tx` and returns its
    /// explicit close time, if any, and whether the applicant is on hold.
    pub(crate) async fn touch_applicant_tx(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        a: &ApplicantId,
    ) -> Result<(Option<i64>, bool)> {
        sqlx::query("UPDATE applicants SET last_activity_at = $3 WHERE tenant_id = $1 AND applicant_id = $2")
            .bind(tenant.to_string())
            .bind(a.as_str())
            .bind(now_ms())
            .execute(&mut **tx)
            .await?;
        let row = sqlx::query("SELECT closed_at, legal_hold FROM applicants WHERE tenant_id = $1 AND applicant_id = $2")
            .bind(tenant.to_string())
            .bind(a.as_str())
            .fetch_one(&mut **tx)
            .await?;
        Ok((row.try_get(0)?, row.try_get::<i64, _>(1)? != 0))
    }

    pub(crate) async fn set_applicant_hold(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        a: &ApplicantId,
        hold: bool,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE applicants SET legal_hold = $3 WHERE tenant_id = $1 AND applicant_id = $2",
        )
        .bind(tenant.to_string())
        .bind(a.as_str())
        .bind(i64::from(hold))
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn set_document_hold(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        id: DocumentId,
        hold: bool,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE documents SET legal_hold = $3 WHERE tenant_id = $1 AND id = $2 AND state = 'committed'",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .bind(i64::from(hold))
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected())
    }

    /// Whether the applicant or any of their documents is on legal hold
    /// (false if unknown).
    pub(crate) async fn applicant_held(&self, tenant: TenantId, a: &ApplicantId) -> Result<bool> {
        let hold: Option<i64> = sqlx::query_scalar(
            "SELECT legal_hold FROM applicants WHERE tenant_id = $1 AND applicant_id = $2",
        )
        .bind(tenant.to_string())
        .bind(a.as_str())
        .fetch_optional(&self.pool)
        .await?;
        if hold.unwrap_or(0) != 0 {
            return Ok(true);
        }
        // Only this applicant's documents (the documents_by_applicant index),
        // so the check costs the same whatever the tenant holds.
        let docs: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM documents WHERE tenant_id = $1 AND applicant_id = $2 AND legal_hold <> 0",
        )
        .bind(tenant.to_string())
        .bind(a.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(docs > 0)
    }

    // -- retention ---------------------------------------------------------------

    pub(crate) async fn retention_overrides(
        &self,
        tenant: TenantId,
    ) -> Result<(u32, Vec<(Category, u32)>)> {
        let inactivity: i64 =
            sqlx::query_scalar("SELECT inactivity_days FROM tenants WHERE id = $1")
                .bind(tenant.to_string())
                .fetch_one(&self.pool)
                .await?;
        let rows = sqlx::query(
            "SELECT category, retain_days FROM retention_policies WHERE tenant_id = $1",
        )
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = vec![];
        for r in rows {
            let c: Category = r
                .try_get::<String, _>(0)?
                .parse()
                .map_err(|_| Error::Corrupt("category"))?;
            let d = u32::try_from(r.try_get::<i64, _>(1)?)
                .map_err(|_| Error::Corrupt("retain days"))?;
            out.push((c, d));
        }
        Ok((
            u32::try_from(inactivity).map_err(|_| Error::Corrupt("inactivity days"))?,
            out,
        ))
    }

    pub(crate) async fn set_retention(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        inactivity_days: u32,
        days: &[(Category, u32)],
    ) -> Result<()> {
        sqlx::query("UPDATE tenants SET inactivity_days = $2 WHERE id = $1")
            .bind(tenant.to_string())
            .bind(i64::from(inactivity_days))
            .execute(&mut **tx)
            .await?;
        // A replacement: categories left out fall back to the defaults.
        sqlx::query("DELETE FROM retention_policies WHERE tenant_id = $1")
            .bind(tenant.to_string())
            .execute(&mut **tx)
            .await?;
        for (c, d) in days {
            sqlx::query(
                "INSERT INTO retention_policies (tenant_id, category, retain_days) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, category) DO UPDATE SET retain_days = $3",
            )
            .bind(tenant.to_string())
            .bind(c.as_str())
            .bind(i64::from(*d))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Every committed document of `tenant` with what retention needs.
    pub(crate) async fn retention_rows(&self, tenant: TenantId) -> Result<Vec<RetentionRow>> {
        let rows = sqlx::query(
            "SELECT d.id, d.category, d.legal_hold, a.legal_hold, a.closed_at, a.last_activity_at \
             FROM documents d JOIN applicants a ON a.tenant_id = d.tenant_id AND a.applicant_id = d.applicant_id \
             WHERE d.tenant_id = $1 AND d.state = 'committed' ORDER BY d.created_at, d.id",
        )
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(retention_row).collect()
    }

    // -- deletion ------------------------------------------------------------------

    /// Deletes committed documents of `tenant` in `tx` (their rows and
    /// wrapped keys) and queues their blobs for removal. Returns the blobs.
    pub(crate) async fn delete_documents_tx(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        ids: &[DocumentId],
    ) -> Result<Vec<BlobName>> {
        let mut blobs = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT blob_name FROM documents WHERE tenant_id = $1 AND id = $2 AND state = 'committed'",
            )
            .bind(tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
            // Gone meanwhile (deleted concurrently): nothing to do for it.
            let Some(row) = row else { continue };
            let blob = BlobName::parse(&row.try_get::<String, _>(0)?)?;
            sqlx::query("INSERT INTO deleted_blobs (blob_name, deleted_at) VALUES ($1, $2) ON CONFLICT (blob_name) DO NOTHING")
                .bind(blob.as_string())
                .bind(now_ms())
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
            blobs.push(blob);
        }
        Ok(blobs)
    }

    /// Erases an applicant in `tx`: queues every blob of theirs, deletes
    /// their documents (pending ones too) and their applicant row, with its
    /// wrapped key. Returns the documents' (category, size) for the receipt.
    pub(crate) async fn erase_applicant_tx(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        a: &ApplicantId,
    ) -> Result<Vec<(Category, u64)>> {
        let rows = sqlx::query(
            "SELECT category, COALESCE(plaintext_len, 0), state FROM documents WHERE tenant_id = $1 AND applicant_id = $2",
        )
        .bind(tenant.to_string())
        .bind(a.as_str())
        .fetch_all(&mut **tx)
        .await?;
        // Every blob of theirs is queued in one statement (one round trip
        // whatever the number of documents).
        sqlx::query(
            "INSERT INTO deleted_blobs (blob_name, deleted_at) \
             SELECT blob_name, $3 FROM documents WHERE tenant_id = $1 AND applicant_id = $2 \
             ON CONFLICT (blob_name) DO NOTHING",
        )
        .bind(tenant.to_string())
        .bind(a.as_str())
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        let mut docs = vec![];
        for r in &rows {
            if r.try_get::<String, _>(2)? == "committed" {
                let c: Category = r
                    .try_get::<String, _>(0)?
                    .parse()
                    .map_err(|_| Error::Corrupt("category"))?;
                docs.push((c, u64::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0)));
            }
        }
        sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND applicant_id = $2")
            .bind(tenant.to_string())
            .bind(a.as_str())
            .execute(&mut **tx)
            .await?;
        let gone = sqlx::query("DELETE FROM applicants WHERE tenant_id = $1 AND applicant_id = $2")
            .bind(tenant.to_string())
            .bind(a.as_str())
            .execute(&mut **tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(docs)
    }

    /// Blobs queued for removal (oldest first).
    pub(crate) async fn queued_blobs(&self, limit: i64) -> Result<Vec<BlobName>> {
        let rows = sqlx::query(
            "SELECT blob_name FROM deleted_blobs ORDER BY deleted_at, blob_name LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| BlobName::parse(&r.try_get::<String, _>(0)?))
            .collect()
    }

    pub(crate) async fn dequeue_blob(&self, blob: BlobName) -> Result<()> {
        sqlx::query("DELETE FROM deleted_blobs WHERE blob_name = $1")
            .bind(blob.as_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Applicants of `tenant` with their creation times, for the erasure
    /// ledger's replay.
    pub(crate) async fn applicant_ids(&self, tenant: TenantId) -> Result<Vec<(ApplicantId, i64)>> {
        let rows =
            sqlx::query("SELECT applicant_id, created_at FROM applicants WHERE tenant_id = $1")
                .bind(tenant.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    ApplicantId::new(&r.try_get::<String, _>(0)?)
                        .map_err(|_| Error::Corrupt("applicant id"))?,
                    r.try_get::<i64, _>(1)?,
                ))
            })
            .collect()
    }
    /// Every tenant id.
    pub(crate) async fn tenant_ids(&self) -> Result<Vec<TenantId>> {
        let rows = sqlx::query("SELECT id FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                TenantId::parse(&r.try_get::<String, _>(0)?)
                    .map_err(|_| Error::Corrupt("tenant id"))
            })
            .collect()
    }

    // -- rotation ------------------------------------------------------------------

    /// Up to `limit` wrapped keys (applicant keys, then system keys) not
    /// under root key version `current`.
    pub(crate) async fn keys_not_under(&self, current: u32, limit: i64) -> Result<Vec<WrappedRow>> {
        let mut out = vec![];
        let rows = sqlx::query(
            "SELECT tenant_id, applicant_id, key_version, root_key_version, wrapped_key FROM applicants \
             WHERE root_key_version <> $1 ORDER BY tenant_id, applicant_id LIMIT $2",
        )
        .bind(i64::from(current))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            out.push(WrappedRow {
                tenant: Some(
                    TenantId::parse(&r.try_get::<String, _>(0)?)
                        .map_err(|_| Error::Corrupt("tenant id"))?,
                ),
                name: r.try_get(1)?,
                key_version: u32::try_from(r.try_get::<i64, _>(2)?)
                    .map_err(|_| Error::Corrupt("key version"))?,
                root_key_version: u32::try_from(r.try_get::<i64, _>(3)?)
                    .map_err(|_| Error::Corrupt("root version"))?,
                wrapped: WrappedKey::from_bytes(&r.try_get::<Vec<u8>, _>(4)?)?,
            });
        }
        let rows = sqlx::query("SELECT name, root_key_version, wrapped_key FROM system_keys WHERE root_key_version <> $1")
            .bind(i64::from(current))
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            out.push(WrappedRow {
                tenant: None,
                name: r.try_get(0)?,
                key_version: 0,
                root_key_version: u32::try_from(r.try_get::<i64, _>(1)?)
                    .map_err(|_| Error::Corrupt("root version"))?,
                wrapped: WrappedKey::from_bytes(&r.try_get::<Vec<u8>, _>(2)?)?,
            });
        }
        Ok(out)
    }

    /// Replaces one wrapped key if it is still under `old` (compare and
    /// swap, so concurrent rotations cannot lose a rewrap).
    pub(crate) async fn rewrap(
        &self,
        tx: &mut Tx,
        row: &WrappedRow,
        new_root: u32,
        wrapped: &WrappedKey,
    ) -> Result<()> {
        match row.tenant {
            Some(t) => sqlx::query(
                "UPDATE applicants SET root_key_version = $3, wrapped_key = $4 \
                 WHERE tenant_id = $1 AND applicant_id = $2 AND root_key_version = $5 AND wrapped_key = $6",
            )
            .bind(t.to_string())
            .bind(&row.name)
            .bind(i64::from(new_root))
            .bind(wrapped.as_bytes().to_vec())
            .bind(i64::from(row.root_key_version))
            .bind(row.wrapped.as_bytes().to_vec())
            .execute(&mut **tx)
            .await?,
            None => sqlx::query(
                "UPDATE system_keys SET root_key_version = $2, wrapped_key = $3 WHERE name = $1 AND root_key_version = $4 AND wrapped_key = $5",
            )
            .bind(&row.name)
            .bind(i64::from(new_root))
            .bind(wrapped.as_bytes().to_vec())
            .bind(i64::from(row.root_key_version))
            .bind(row.wrapped.as_bytes().to_vec())
            .execute(&mut **tx)
            .await?,
        };
        Ok(())
    }

    /// How many wrapped keys are under root key version `v`.
    pub(crate) async fn keys_under(&self, v: u32) -> Result<u64> {
        let a: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM applicants WHERE root_key_version = $1")
                .bind(i64::from(v))
                .fetch_one(&self.pool)
                .await?;
        let s: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM system_keys WHERE root_key_version = $1")
                .bind(i64::from(v))
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(a + s).unwrap_or(0))
    }
}

fn retention_row(r: &sqlx::any::AnyRow) -> Result<RetentionRow> {
    Ok(RetentionRow {
        id: DocumentId::parse(&r.try_get::<String, _>(0)?)
            .map_err(|_| Error::Corrupt("document id"))?,
        category: r
            .try_get::<String, _>(1)?
            .parse()
            .map_err(|_| Error::Corrupt("category"))?,
        doc_hold: r.try_get::<i64, _>(2)? != 0,
        applicant_hold: r.try_get::<i64, _>(3)? != 0,
        closed_at: r.try_get(4)?,
        last_activity_at: r.try_get(5)?,
    })
}
