//! Finding and removing what crashes leave behind, and checking that
//! nothing else is left.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;

use super::Vault;
use crate::error::Result;
use crate::meta::now_ms;

/// What a sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Pending rows (uploads that never committed) removed, with their blobs.
    pub pending_rows: u64,
    /// Blobs that no row names (deleted or abandoned documents) removed.
    pub orphan_blobs: u64,
    /// Staging files of interrupted local uploads removed.
    pub staging_files: u64,
}

/// The state of storage as a whole, for operators and consistency checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageReport {
    /// Committed documents.
    pub committed: u64,
    /// Rows still pending (uploads in flight, or crashed).
    pub pending: u64,
    /// Blobs that no row names.
    pub orphan_blobs: u64,
    /// Committed rows whose blob is missing (must be 0).
    pub missing_blobs: u64,
}

impl Vault {
    /// Removes leftovers older than `grace`: pending rows (and their blobs),
    /// blobs no row names, and local staging files. Never touches a
    /// committed document, nor anything younger than `grace`, so it is safe
    /// while uploads run as long as `grace` exceeds the longest upload.
    pub async fn sweep(&self, grace: Duration) -> Result<SweepReport> {
        let inner = &self.inner;
        let mut report = SweepReport::default();
        // Blobs of deleted documents still queued (a crash after the rows
        // went) are removed first.
        self.drain_deleted_blobs().await;
        let cutoff_ms =
            now_ms().saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        for (tenant, id, blob) in inner.meta.stale_pending(cutoff_ms).await? {
            // The row first, and only while it is still pending: an upload
            // that commits meanwhile keeps its blob. If we crash after the
            // row went, the blob is an orphan for the next sweep.
            if inner.meta.delete_pending(tenant, id).await? {
                inner.blobs.delete(blob).await?;
                report.pending_rows += 1;
            }
        }
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let blobs: Vec<_> = inner.blobs.list().try_collect().await?;
        for b in blobs {
            if b.last_modified <= cutoff && !inner.meta.blob_has_row(b.name).await? {
                inner.blobs.delete(b.name).await?;
                report.orphan_blobs += 1;
            }
        }
        report.staging_files = inner.blobs.sweep_staging(grace)?;
        Ok(report)
    }

    /// Compares every row with every blob (reads the whole listing; an
    /// operator's check, not a hot path).
    pub async fn storage_report(&self) -> Result<StorageReport> {
        let inner = &self.inner;
        let rows = inner.meta.all_blob_names().await?;
        let blobs: HashSet<_> = inner.blobs.list().map_ok(|b| b.name).try_collect().await?;
        let named: HashSet<_> = rows.iter().map(|(name, _)| *name).collect();
        Ok(StorageReport {
            committed: rows.iter().filter(|(_, committed)| *committed).count() as u64,
            pending: rows.iter().filter(|(_, committed)| !*committed).count() as u64,
            orphan_blobs: blobs.difference(&named).count() as u64,
            missing_blobs: rows
                .iter()
                .filter(|(name, committed)| *committed && !blobs.contains(name))
                .count() as u64,
        })
    }
}
