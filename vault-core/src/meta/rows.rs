//! Rows as the vault reads and writes them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::category::Category;
use crate::error::{Error, Result};
use crate::format::HEADER_LEN;
use crate::ids::{ApplicantId, DocumentId, TenantId};
use crate::keys::WrappedKey;
use crate::store::BlobName;

/// An applicant's current wrapped key.
#[derive(Debug)]
pub(crate) struct ApplicantKeyRow {
    pub(crate) key_version: u32,
    pub(crate) root_key_version: u32,
    pub(crate) wrapped_key: WrappedKey,
}

fn u32_col(r: &AnyRow, col: &str) -> Result<u32> {
    u32::try_from(r.try_get::<i64, _>(col)?)
        .map_err(|_| Error::Corrupt("integer column out of range"))
}

fn u64_col(r: &AnyRow, col: &str) -> Result<u64> {
    u64::try_from(r.try_get::<i64, _>(col)?)
        .map_err(|_| Error::Corrupt("integer column out of range"))
}

impl ApplicantKeyRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            key_version: u32_col(r, "key_version")?,
            root_key_version: u32_col(r, "root_key_version")?,
            wrapped_key: WrappedKey::from_bytes(&r.try_get::<Vec<u8>, _>("wrapped_key")?)?,
        })
    }
}

/// A document about to be inserted as pending.
#[derive(Debug)]
pub(crate) struct NewDocument {
    pub(crate) tenant: TenantId,
    pub(crate) id: DocumentId,
    pub(crate) applicant: ApplicantId,
    pub(crate) blob: BlobName,
    pub(crate) category: Category,
    pub(crate) content_type: String,
    pub(crate) file_name: Option<Vec<u8>>,
    pub(crate) header: [u8; HEADER_LEN],
    pub(crate) wrapped_key: WrappedKey,
    pub(crate) applicant_key_version: u32,
    pub(crate) created_at: i64,
}

/// The columns [`DocumentRow::from_row`] reads.
/// Selected from `documents d JOIN applicants a` (see [`DOCUMENT_FROM`]).
pub(crate) const DOCUMENT_COLUMNS: &str = "d.tenant_id, d.id, d.applicant_id, d.blob_name, d.category, \
    d.content_type, d.file_name, d.header, d.wrapped_key, d.applicant_key_version, d.plaintext_len, \
    d.ciphertext_len, d.sha256, d.legal_hold, d.created_at, d.committed_at, \
    a.legal_hold AS applicant_hold, a.closed_at, a.last_activity_at";

/// The join [`DOCUMENT_COLUMNS`] reads from.
pub(crate) const DOCUMENT_FROM: &str = "documents d JOIN applicants a ON a.tenant_id = d.tenant_id AND a.applicant_id = d.applicant_id";

/// A committed document.
#[derive(Debug)]
pub(crate) struct DocumentRow {
    pub(crate) tenant: TenantId,
    pub(crate) id: DocumentId,
    pub(crate) applicant: ApplicantId,
    pub(crate) blob: BlobName,
    pub(crate) category: Category,
    pub(crate) content_type: String,
    pub(crate) file_name: Option<Vec<u8>>,
    pub(crate) header: Vec<u8>,
    pub(crate) wrapped_key: WrappedKey,
    pub(crate) applicant_key_version: u32,
    pub(crate) plaintext_len: u64,
    pub(crate) ciphertext_len: u64,
    pub(crate) sha256: Option<[u8; 32]>,
    pub(crate) legal_hold: bool,
    pub(crate) created_at: i64,
    pub(crate) applicant_hold: bool,
    pub(crate) closed_at: Option<i64>,
    pub(crate) last_activity_at: i64,
}

impl DocumentRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        fn corrupt<E>(what: &'static str) -> impl Fn(E) -> Error {
            move |_| Error::Corrupt(what)
        }
        let sha256 = r
            .try_get::<Option<Vec<u8>>, _>("sha256")?
            .map(|v| <[u8; 32]>::try_from(v.as_slice()).map_err(corrupt("sha256 column")))
            .transpose()?;
        Ok(Self {
            tenant: TenantId::parse(&r.try_get::<String, _>("tenant_id")?)
                .map_err(corrupt("tenant id"))?,
            id: DocumentId::parse(&r.try_get::<String, _>("id")?)
                .map_err(corrupt("document id"))?,
            applicant: ApplicantId::new(&r.try_get::<String, _>("applicant_id")?)
                .map_err(corrupt("applicant id"))?,
            blob: BlobName::parse(&r.try_get::<String, _>("blob_name")?)?,
            category: r
                .try_get::<String, _>("category")?
                .parse()
                .map_err(corrupt("category"))?,
            content_type: r.try_get("content_type")?,
            file_name: r.try_get("file_name")?,
            header: r.try_get("header")?,
            wrapped_key: WrappedKey::from_bytes(&r.try_get::<Vec<u8>, _>("wrapped_key")?)?,
            applicant_key_version: u32_col(r, "applicant_key_version")?,
            plaintext_len: u64_col(r, "plaintext_len")?,
            ciphertext_len: u64_col(r, "ciphertext_len")?,
            sha256,
            legal_hold: r.try_get::<i64, _>("legal_hold")? != 0,
            created_at: r.try_get("created_at")?,
            applicant_hold: r.try_get::<i64, _>("applicant_hold")? != 0,
            closed_at: r.try_get("closed_at")?,
            last_activity_at: r.try_get("last_activity_at")?,
        })
    }
}
