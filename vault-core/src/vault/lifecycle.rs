//! Retention, legal hold, purge, erasure (with its ledger), root key
//! rotation, and the audit log's verification and checkpoints.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Tenant, Vault};
use crate::audit::{Actor, AuditRecord, AuditReport, Checkpoint, Event, Outcome, verify};
use crate::category::Category;
use crate::error::{Error, Result};
use crate::ids::{ApplicantId, DocumentId, TenantId};
use crate::keys::{ApplicantKeyId, RootKeyVersion, unwrap_applicant_key, wrap_applicant_key};
use crate::meta::{RetentionRow, WrappedRow, now_ms};
use crate::retention::RetentionPolicy;
use crate::secret::ApplicantKey;

/// Documents deleted per purge transaction (one audit record each).
const PURGE_BATCH: usize = 500;
/// Keys rewrapped per rotation transaction (one audit record each).
const ROTATION_BATCH: i64 = 500;
/// Blob-store prefix of audit checkpoints.
const CHECKPOINT_PREFIX: &str = "audit/checkpoints";
/// Blob-store prefix of the erasure ledger.
const LEDGER_PREFIX: &str = "ledger/erasures";

/// What a purge removed (or, on a dry run, would remove).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeReport {
    /// The time purge judged retention against (Unix milliseconds).
    pub as_of_ms: i64,
    /// Whether nothing was removed.
    pub dry_run: bool,
    /// The documents due, oldest first.
    pub documents: Vec<DocumentId>,
    /// How many per category.
    pub by_category: BTreeMap<Category, u64>,
    /// Documents past retention but kept by a legal hold.
    pub held: u64,
}

/// Proof of an erasure, holding no personal data: the applicant appears
/// only as a keyed reference (HMAC under the vault's ledger key), which
/// only this vault can match against an applicant id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureReceipt {
    /// The receipt's own id.
    pub receipt_id: uuid::Uuid,
    /// The tenant.
    pub tenant: TenantId,
    /// HMAC-SHA256(ledger key, tenant id || applicant id), hex.
    pub applicant_ref: String,
    /// When the applicant key was destroyed, so that nothing of theirs
    /// decrypts any more (Unix milliseconds).
    pub erased_at_ms: i64,
    /// When their blobs had been removed too (Unix milliseconds).
    pub completed_at_ms: i64,
    /// Who.
    pub actor: String,
    /// Documents erased.
    pub documents: u64,
    /// Plaintext bytes erased.
    pub bytes: u64,
    /// Documents erased per category.
    pub by_category: BTreeMap<Category, u64>,
    /// The audit log's head right after the erasure (also checkpointed).
    pub audit_seq: u64,
    /// Its MAC, hex.
    pub audit_mac: String,
}

impl ErasureReceipt {
    /// The receipt as JSON.
    pub fn to_json(&self) -> String {
        let by: serde_json::Map<String, serde_json::Value> = self
            .by_category
            .iter()
            .map(|(c, n)| (c.as_str().to_owned(), (*n).into()))
            .collect();
        serde_json::json!({
            "receipt_id": self.receipt_id.to_string(),
            "tenant_id": self.tenant.to_string(),
            "applicant_ref": self.applicant_ref,
            "erased_at_ms": self.erased_at_ms,
            "completed_at_ms": self.completed_at_ms,
            "actor": self.actor,
            "documents": self.documents,
            "bytes": self.bytes,
            "by_category": by,
            "audit_seq": self.audit_seq,
            "audit_mac": self.audit_mac,
        })
        .to_string()
    }
}

/// What a root key rotation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationReport {
    /// The root key version everything is now wrapped under.
    pub version: RootKeyVersion,
    /// Keys rewrapped by this run.
    pub rewrapped: u64,
}

impl Vault {
    /// Removes queued blobs of deleted documents; failures stay queued.
    pub(crate) async fn drain_deleted_blobs(&self) {
        let Ok(queue) = self.inner.meta.queued_blobs(10_000).await else {
            return;
        };
        for blob in queue {
            if self.inner.blobs.delete(blob).await.is_ok() {
                let _ = self.inner.meta.dequeue_blob(blob).await;
            }
        }
    }

    /// Writes the audit head as a checkpoint object outside the database.
    pub async fn checkpoint_audit(&self) -> Result<Checkpoint> {
        let (seq, mac) = self.inner.meta.audit_head().await?;
        let cp = Checkpoint {
            seq,
            mac,
            at_ms: now_ms(),
        };
        self.inner
            .blobs
            // Never overwritten: a later checkpoint at the same sequence
            // number (after a restore rewound the log) sits beside it.
            .put_small(
                &format!(
                    "{CHECKPOINT_PREFIX}/{seq:020}-{:020}-{}.json",
                    cp.at_ms,
                    uuid::Uuid::new_v4().simple()
                ),
                cp.to_json().into_bytes(),
            )
            .await?;
        Ok(cp)
    }

    /// Every checkpoint in the blob store, oldest first.
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let mut names = self.inner.blobs.list_small(CHECKPOINT_PREFIX).await?;
        names.sort();
        let mut out = vec![];
        for name in names {
            let bytes = self.inner.blobs.get_small(&name).await?;
            let text = String::from_utf8(bytes).map_err(|_| Error::Corrupt("audit checkpoint"))?;
            out.push(Checkpoint::from_json(&text)?);
        }
        Ok(out)
    }

    /// Verifies the whole audit log: every record's MAC and chain, no gaps,
    /// the database head, and every checkpoint outside the database.
    pub async fn verify_audit(&self) -> Result<AuditReport> {
        // A consistent view under concurrent appends: checkpoints first
        // (each names a record committed before it was written), then the
        // head, then the records up to the head.
        let checkpoints = self.checkpoints().await?;
        let head = self.inner.meta.audit_head().await?;
        let mut records = vec![];
        let mut after = 0;
        while after < head.0 {
            let page = self.inner.meta.audit_records(None, after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            records.extend(page.into_iter().filter(|r| r.seq <= head.0));
        }
        Ok(verify(&self.inner.audit_key, &records, head, &checkpoints))
    }

    /// Audit records after `after_seq` (all tenants), for the operator.
    pub async fn audit_log(&self, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        self.inner
            .meta
            .audit_records(None, after_seq, i64::from(limit.clamp(1, 10_000)))
            .await
    }

    /// Purges every tenant (the operator's retention job).
    pub async fn purge_all(
        &self,
        as_of_ms: i64,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<Vec<(TenantId, PurgeReport)>> {
        let mut out = vec![];
        for id in self.inner.meta.tenant_ids().await? {
            let t = self.tenant(id, actor.clone()).await?;
            out.push((id, t.purge(as_of_ms, dry_run).await?));
        }
        Ok(out)
    }

    /// Rewraps every applicant key and the system key under the key
    /// provider's current root key version. Re-encrypts no document and
    /// changes no blob. Resumable: each batch commits on its own (with its
    /// audit record), and a rerun continues with what is left.
    pub async fn rotate_root_key(&self, actor: &Actor) -> Result<RotationReport> {
        let inner = &self.inner;
        let keys = &*inner.keys;
        let current = keys.current_version();
        let mut rewrapped = 0u64;
        loop {
            let rows = inner
                .meta
                .keys_not_under(current.get(), ROTATION_BATCH)
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut tx = inner.meta.begin().await?;
            let event = Event {
                tenant: None,
                actor,
                action: "root_key.rotate",
                target: format!("keys:{} to-root-version:{}", rows.len(), current.get()),
                outcome: Outcome::Ok,
            };
            inner
                .meta
                .append_audit(&mut tx, &inner.audit_key, &event)
                .await?;
            for row in &rows {
                let new = rewrap(keys, row, current)?;
                inner.meta.rewrap(&mut tx, row, current.get(), &new).await?;
            }
            tx.commit().await?;
            rewrapped += rows.len() as u64;
        }
        self.checkpoint_audit().await?;
        Ok(RotationReport {
            version: current,
            rewrapped,
        })
    }

    /// How many wrapped keys still use root key `version`: it can be retired
    /// (removed from the key file and destroyed) once this is 0.
    pub async fn root_key_usage(&self, version: RootKeyVersion) -> Result<u64> {
        self.inner.meta.keys_under(version.get()).await
    }

    /// Replays the erasure ledger (after restoring a metadata backup):
    /// erases every applicant the ledger names who is present again.
    /// Returns how many were erased.
    pub async fn replay_erasure_ledger(&self, actor: &Actor) -> Result<u64> {
        let mut erased = 0;
        for name in self.inner.blobs.list_small(LEDGER_PREFIX).await? {
            let bytes = self.inner.blobs.get_small(&name).await?;
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|_| Error::Corrupt("ledger entry"))?;
            let tenant = v["tenant_id"]
                .as_str()
                .and_then(|t| TenantId::parse(t).ok())
                .ok_or(Error::Corrupt("ledger entry tenant"))?;
            let reference = v["applicant_ref"]
                .as_str()
                .ok_or(Error::Corrupt("ledger entry reference"))?;
            if !self.inner.meta.tenant_exists(tenant).await? {
                continue;
            }
            let t = self.tenant(tenant, actor.clone()).await?;
            let requested_at = v["requested_at_ms"].as_i64().unwrap_or(i64::MAX);
            for (a, created_at) in self.inner.meta.applicant_ids(tenant).await? {
                // An applicant created after the request is a new one who
                // happens to reuse the id: not the person who was erased.
                if created_at > requested_at || t.applicant_ref(&a) != reference {
                    continue;
                }
                match t.erase_inner(&a, false, true).await {
                    Ok(_) => erased += 1,
                    // A hold placed since wins; the operator sees it in the audit log.
                    Err(Error::LegalHold) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(erased)
    }
}

fn rewrap(
    keys: &dyn crate::keys::KeyProvider,
    row: &WrappedRow,
    to: RootKeyVersion,
) -> Result<crate::keys::WrappedKey> {
    let from = RootKeyVersion::new(row.root_key_version)
        .map_err(|_| Error::Corrupt("root key version 0"))?;
    match row.tenant {
        Some(tenant) => {
            let id = ApplicantKeyId {
                tenant,
                applicant: ApplicantId::new(&row.name)
                    .map_err(|_| Error::Corrupt("applicant id"))?,
                version: row.key_version,
            };
            let key: ApplicantKey = unwrap_applicant_key(keys, from, &id, &row.wrapped)?;
            wrap_applicant_key(keys, to, &id, &key)
        }
        None => {
            let key = crate::keys::unwrap_system_key(keys, from, &row.name, &row.wrapped)?;
            crate::keys::wrap_system_key(keys, to, &row.name, &key)
        }
    }
}

impl Tenant {
    /// The tenant's retention policy (documented defaults where unset).
    pub async fn retention_policy(&self) -> Result<RetentionPolicy> {
        let (inactivity_days, overrides) = self.inner().meta.retention_overrides(self.id).await?;
        let mut p = RetentionPolicy {
            inactivity_days,
            ..RetentionPolicy::default()
        };
        for (c, d) in overrides {
            p.retain_days.insert(c, d);
        }
        Ok(p)
    }

    /// Replaces the tenant's retention policy (audited).
    pub async fn set_retention_policy(&self, policy: &RetentionPolicy) -> Result<()> {
        policy.validate()?;
        let inner = self.inner();
        let days: Vec<(Category, u32)> = policy.retain_days.iter().map(|(c, d)| (*c, *d)).collect();
        let target = format!(
            "retention-policy inactivity:{} {}",
            policy.inactivity_days,
            days.iter()
                .map(|(c, d)| format!("{c}:{d}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut tx = inner.meta.begin().await?;
        inner
            .meta
            .append_audit(
                &mut tx,
                &inner.audit_key,
                &self.event("retention.set", target, Outcome::Ok),
            )
            .await?;
        inner
            .meta
            .set_retention(&mut tx, self.id, policy.inactivity_days, &days)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn applicant_update(
        &self,
        action: &'static str,
        applicant: &ApplicantId,
        change: ApplicantChange,
    ) -> Result<()> {
        let inner = self.inner();
        let mut tx = inner.meta.begin().await?;
        inner
            .meta
            .append_audit(
                &mut tx,
                &inner.audit_key,
                &self.event(
                    action,
                    format!("applicant:{}", self.applicant_ref(applicant)),
                    Outcome::Ok,
                ),
            )
            .await?;
        let n = match change {
            ApplicantChange::Close(at) => {
                inner
                    .meta
                    .set_applicant_closed(&mut tx, self.id, applicant, at)
                    .await?
            }
            ApplicantChange::Hold(h) => {
                inner
                    .meta
                    .set_applicant_hold(&mut tx, self.id, applicant, h)
                    .await?
            }
        };
        if n == 0 {
            return Err(Error::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Closes an applicant's application: the retention clock of their
    /// documents starts at `closed_at_ms` (default now).
    pub async fn close_application(
        &self,
        applicant: &ApplicantId,
        closed_at_ms: Option<i64>,
    ) -> Result<()> {
        self.applicant_update(
            "application.close",
            applicant,
            ApplicantChange::Close(Some(closed_at_ms.unwrap_or_else(now_ms))),
        )
        .await
    }

    /// Reopens an applicant's application (stops its retention clock).
    pub async fn open_application(&self, applicant: &ApplicantId) -> Result<()> {
        self.applicant_update("application.open", applicant, ApplicantChange::Close(None))
            .await
    }

    /// Sets or clears the legal hold on an applicant: while set, none of
    /// their documents can be deleted or purged, and they cannot be erased.
    pub async fn set_applicant_hold(&self, applicant: &ApplicantId, hold: bool) -> Result<()> {
        let action = if hold {
            "legal_hold.set"
        } else {
            "legal_hold.clear"
        };
        self.applicant_update(action, applicant, ApplicantChange::Hold(hold))
            .await
    }

    /// Sets or clears the legal hold on one document.
    pub async fn set_document_hold(&self, id: DocumentId, hold: bool) -> Result<()> {
        let inner = self.inner();
        let action = if hold {
            "legal_hold.set"
        } else {
            "legal_hold.clear"
        };
        let mut tx = inner.meta.begin().await?;
        inner
            .meta
            .append_audit(
                &mut tx,
                &inner.audit_key,
                &self.event(action, format!("document:{id}"), Outcome::Ok),
            )
            .await?;
        if inner
            .meta
            .set_document_hold(&mut tx, self.id, id, hold)
            .await?
            == 0
        {
            return Err(Error::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// The documents due for purge as of `as_of_ms`, and how many past
    /// retention are held.
    async fn due(&self, as_of_ms: i64) -> Result<(Vec<RetentionRow>, u64)> {
        let policy = self.retention_policy().await?;
        let mut due = vec![];
        let mut held = 0;
        for row in self.inner().meta.retention_rows(self.id).await? {
            let until =
                policy.retain_until(row.category, row.closed_at, row.last_activity_at, as_of_ms);
            if until.is_some_and(|u| u <= as_of_ms) {
                if row.doc_hold || row.applicant_hold {
                    held += 1;
                } else {
                    due.push(row);
                }
            }
        }
        Ok((due, held))
    }

    /// Removes every document whose retention ended at or before `as_of_ms`
    /// and that no legal hold covers; with `dry_run`, lists exactly what a
    /// real run would remove and removes nothing. Idempotent, and resumable
    /// after a crash: documents go in batches, each batch's rows, wrapped
    /// keys and audit record in one transaction, and their blobs are queued
    /// for removal in that same transaction.
    pub async fn purge(&self, as_of_ms: i64, dry_run: bool) -> Result<PurgeReport> {
        let inner = self.inner();
        self.vault.drain_deleted_blobs().await;
        let (due, held) = self.due(as_of_ms).await?;
        let mut documents: Vec<DocumentId> = due.iter().map(|r| r.id).collect();
        if dry_run {
            self.vault
                .audit(self.event(
                    "purge.dry_run",
                    format!("as_of:{as_of_ms} due:{}", documents.len()),
                    Outcome::Ok,
                ))
                .await?;
        } else {
            let policy = self.retention_policy().await?;
            let mut purged = Vec::with_capacity(documents.len());
            for batch in documents.chunks(PURGE_BATCH) {
                let mut tx = inner.meta.begin().await?;
                // Re-check under the audit lock: a hold set, or an
                // application reopened, since the list was made wins.
                inner.meta.lock_audit(&mut tx).await?;
                let still_due: Vec<DocumentId> = inner
                    .meta
                    .retention_rows_tx(&mut tx, self.id, batch)
                    .await?
                    .into_iter()
                    .filter(|r| {
                        !r.doc_hold
                            && !r.applicant_hold
                            && policy
                                .retain_until(r.category, r.closed_at, r.last_activity_at, as_of_ms)
                                .is_some_and(|u| u <= as_of_ms)
                    })
                    .map(|r| r.id)
                    .collect();
                if still_due.is_empty() {
                    continue;
                }
                let target = format!(
                    "as_of:{as_of_ms} documents:{}",
                    still_due
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
                inner
                    .meta
                    .append_audit(
                        &mut tx,
                        &inner.audit_key,
                        &self.event("purge", target, Outcome::Ok),
                    )
                    .await?;
                inner
                    .meta
                    .delete_documents_tx(&mut tx, self.id, &still_due)
                    .await?;
                tx.commit().await?;
                purged.extend(still_due);
            }
            documents = purged;
            self.vault.drain_deleted_blobs().await;
            self.vault.checkpoint_audit().await?;
        }
        let kept: std::collections::HashSet<DocumentId> = documents.iter().copied().collect();
        let mut by_category = BTreeMap::new();
        for r in due.iter().filter(|r| kept.contains(&r.id)) {
            *by_category.entry(r.category).or_insert(0u64) += 1;
        }
        Ok(PurgeReport {
            as_of_ms,
            dry_run,
            documents,
            by_category,
            held,
        })
    }

    /// The keyed reference to an applicant used in receipts, the ledger and
    /// audit records: HMAC-SHA256(ledger key, tenant id || 0x00 || applicant
    /// id), hex. It identifies the applicant to this vault only.
    pub fn applicant_ref(&self, applicant: &ApplicantId) -> String {
        #[allow(clippy::expect_used)]
        let mut h = <Hmac<Sha256> as Mac>::new_from_slice(self.inner().ledger_key.expose())
            .expect("HMAC takes any key length");
        h.update(self.id.as_bytes());
        h.update(&[0]);
        h.update(applicant.as_str().as_bytes());
        hex::encode(h.finalize().into_bytes())
    }

    /// Erases an applicant (a GDPR/CCPA erasure request): writes the
    /// erasure to the ledger outside the database, then in one transaction
    /// destroys their applicant key (so nothing of theirs decrypts from then
    /// on, from any copy of a blob), deletes their document rows and queues
    /// their blobs, with the audit record; then removes the blobs. Refused
    /// with [`Error::LegalHold`] while the applicant or any of their
    /// documents is on hold.
    pub async fn erase_applicant(&self, applicant: &ApplicantId) -> Result<ErasureReceipt> {
        self.erase_inner(applicant, true, false).await
    }

    pub(crate) async fn erase_inner(
        &self,
        applicant: &ApplicantId,
        write_ledger: bool,
        replay: bool,
    ) -> Result<ErasureReceipt> {
        let inner = self.inner();
        let reference = self.applicant_ref(applicant);
        let target = format!("applicant:{reference}");
        if inner
            .meta
            .applicant_key(self.id, applicant)
            .await?
            .is_none()
        {
            return Err(Error::NotFound);
        }
        if inner.meta.applicant_held(self.id, applicant).await? {
            self.vault
                .audit(self.event("applicant.erase", target, Outcome::Denied))
                .await?;
            return Err(Error::LegalHold);
        }
        let receipt_id = uuid::Uuid::new_v4();
        let requested_at_ms = now_ms();
        if write_ledger {
            // The ledger entry goes first: if we crash after it, a replay or
            // a retry completes the erasure; never the other way round.
            let entry = serde_json::json!({
                "receipt_id": receipt_id.to_string(),
                "tenant_id": self.id.to_string(),
                "applicant_ref": reference,
                "requested_at_ms": requested_at_ms,
            });
            inner
                .blobs
                .put_small(
                    &format!("{LEDGER_PREFIX}/{requested_at_ms:020}-{receipt_id}.json"),
                    entry.to_string().into_bytes(),
                )
                .await?;
        }
        let action = if replay {
            "applicant.erase.replay"
        } else {
            "applicant.erase"
        };
        let mut tx = inner.meta.begin().await?;
        // Re-check under the audit lock: a hold set since the first check
        // wins over the erasure.
        inner.meta.lock_audit(&mut tx).await?;
        match inner
            .meta
            .applicant_held_tx(&mut tx, self.id, applicant)
            .await?
        {
            None => return Err(Error::NotFound),
            Some(true) => {
                drop(tx);
                self.vault
                    .audit(self.event("applicant.erase", target, Outcome::Denied))
                    .await?;
                return Err(Error::LegalHold);
            }
            Some(false) => {}
        }
        let (audit_seq, audit_mac) = inner
            .meta
            .append_audit(
                &mut tx,
                &inner.audit_key,
                &self.event(action, target, Outcome::Ok),
            )
            .await?;
        let docs = inner
            .meta
            .erase_applicant_tx(&mut tx, self.id, applicant)
            .await?;
        tx.commit().await?;
        let erased_at_ms = now_ms();
        self.vault.drain_deleted_blobs().await;
        // The erasure has happened: a failed checkpoint must not hide the
        // receipt (which carries the audit head itself); the next purge,
        // erasure, export or rotation writes one.
        let _ = self.vault.checkpoint_audit().await;
        let completed_at_ms = now_ms();
        let mut by_category = BTreeMap::new();
        for (c, _) in &docs {
            *by_category.entry(*c).or_insert(0u64) += 1;
        }
        Ok(ErasureReceipt {
            receipt_id,
            tenant: self.id,
            applicant_ref: reference,
            erased_at_ms,
            completed_at_ms,
            actor: self.actor.as_str().to_owned(),
            documents: docs.len() as u64,
            bytes: docs.iter().map(|(_, n)| n).sum(),
            by_category,
            audit_seq,
            audit_mac: hex::encode(audit_mac),
        })
    }

    /// This tenant's audit records after `after_seq`, oldest first.
    pub async fn audit_log(&self, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        self.inner()
            .meta
            .audit_records(Some(self.id), after_seq, i64::from(limit.clamp(1, 10_000)))
            .await
    }
}

/// One change to an applicant row, applied inside the audited transaction.
enum ApplicantChange {
    Close(Option<i64>),
    Hold(bool),
}

#[allow(dead_code)]
fn assert_futures_are_send(t: Tenant, v: Vault, a: ApplicantId, actor: Actor) {
    fn is_send<T: Send>(_: T) {}
    is_send(t.purge(0, true));
    is_send(t.erase_applicant(&a));
    is_send(t.close_application(&a, None));
    is_send(v.rotate_root_key(&actor));
    is_send(v.verify_audit());
}
