//! Put, get, range, head, list and delete.

use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use futures::StreamExt;
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Tenant;
use crate::audit::Outcome;
use crate::category::Category;
use crate::error::{Error, Result};
use crate::format::{Layout, Opener, Sealer, StreamContext, open_stream, seal_stream};
use crate::ids::{ApplicantId, DocumentId};
use crate::keys::{
    ApplicantKeyId, DataKeyId, KeyProvider, unwrap_applicant_key, unwrap_data_key,
    wrap_applicant_key, wrap_data_key,
};
use crate::meta::{ApplicantKeyRow, DocumentRow, NewDocument, now_ms};
use crate::retention::RetentionPolicy;
use crate::secret::{ApplicantKey, DataKey};
use crate::store::BlobName;

/// The metadata field under which a document's file name is sealed.
const FILE_NAME_FIELD: &str = "file_name";
/// Longest file name, in bytes.
const FILE_NAME_MAX: usize = 1024;
/// Longest declared content type, in bytes.
const CONTENT_TYPE_MAX: usize = 255;
/// Version of every applicant key this vault creates.
const APPLICANT_KEY_VERSION: u32 = 1;
/// Most documents one list call returns.
pub const LIST_LIMIT_MAX: u32 = 1000;

/// What to store, besides the bytes.
#[derive(Clone)]
pub struct PutRequest {
    /// Whose document it is (their key is created on first use).
    pub applicant: ApplicantId,
    /// What kind of document.
    pub category: Category,
    /// The content type the client declared.
    pub content_type: String,
    /// The original file name (personal data: stored only encrypted).
    pub file_name: Option<String>,
    /// The client's SHA-256 of the plaintext; the put fails unless it
    /// matches.
    pub expected_sha256: Option<[u8; 32]>,
    /// Compute and record the plaintext's SHA-256 even without an expected
    /// value (costs CPU: SHA-256 is slower than the encryption).
    pub compute_sha256: bool,
    /// Refuse documents larger than this many bytes, while reading.
    pub max_size: Option<u64>,
}

impl PutRequest {
    /// A request with no file name, digest or size limit.
    pub fn new(
        applicant: ApplicantId,
        category: Category,
        content_type: impl Into<String>,
    ) -> Self {
        Self {
            applicant,
            category,
            content_type: content_type.into(),
            file_name: None,
            expected_sha256: None,
            compute_sha256: false,
            max_size: None,
        }
    }

    fn validate(&self) -> Result<()> {
        let ct = &self.content_type;
        if ct.is_empty()
            || ct.len() > CONTENT_TYPE_MAX
            || !ct.bytes().all(|b| (0x21..0x7f).contains(&b) || b == b' ')
        {
            return Err(Error::InvalidArgument(
                "content type must be 1-255 printable ASCII characters",
            ));
        }
        if let Some(n) = &self.file_name {
            if n.is_empty() || n.len() > FILE_NAME_MAX || n.chars().any(char::is_control) {
                return Err(Error::InvalidArgument(
                    "file name must be 1-1024 bytes without control characters",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for PutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutRequest")
            .field("applicant", &self.applicant)
            .field("category", &self.category)
            .field("content_type", &self.content_type)
            .field("file_name", &self.file_name.as_ref().map(|_| "[REDACTED]"))
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

/// A stored document's metadata, file name decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct DocumentInfo {
    /// The document's id.
    pub id: DocumentId,
    /// Whose it is.
    pub applicant: ApplicantId,
    /// Its category.
    pub category: Category,
    /// The declared content type.
    pub content_type: String,
    /// The original file name, if one was given.
    pub file_name: Option<String>,
    /// Plaintext size in bytes.
    pub size: u64,
    /// SHA-256 of the plaintext, when it was computed at upload.
    pub sha256: Option<[u8; 32]>,
    /// When it was stored (Unix milliseconds).
    pub created_at_ms: i64,
    /// Whether a legal hold covers the document (set on it or on its
    /// applicant).
    pub legal_hold: bool,
    /// When the document becomes due for purge (Unix milliseconds), under
    /// the tenant's current policy; `None` while its application is open.
    pub retain_until_ms: Option<i64>,
}

impl fmt::Debug for DocumentInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentInfo")
            .field("id", &self.id)
            .field("applicant", &self.applicant)
            .field("category", &self.category)
            .field("content_type", &self.content_type)
            .field("file_name", &self.file_name.as_ref().map(|_| "[REDACTED]"))
            .field("size", &self.size)
            .field("created_at_ms", &self.created_at_ms)
            .field("legal_hold", &self.legal_hold)
            .field("retain_until_ms", &self.retain_until_ms)
            .finish_non_exhaustive()
    }
}

/// A document being read: its metadata, the plaintext range served, and the
/// plaintext as a stream of chunks, each released only after its segment
/// authenticated.
pub struct Download {
    /// The document's metadata.
    pub info: DocumentInfo,
    /// The plaintext byte range the body holds.
    pub range: Range<u64>,
    /// The plaintext.
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Where the next page of a listing starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListCursor {
    created_at_ms: i64,
    id: DocumentId,
}

impl ListCursor {
    /// An opaque text form, for APIs.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at_ms, self.id)
    }

    /// Parses [`ListCursor::encode`]'s output.
    pub fn decode(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument("malformed list cursor");
        let (ts, id) = s.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            created_at_ms: ts.parse().map_err(|_| bad())?,
            id: DocumentId::parse(id).map_err(|_| bad())?,
        })
    }
}

/// One page of an applicant's documents.
#[derive(Debug)]
pub struct DocumentPage {
    /// The documents, oldest first.
    pub documents: Vec<DocumentInfo>,
    /// Where the next page starts, if there may be one.
    pub next: Option<ListCursor>,
}

/// About 1 MiB of whole segments: the piece size for local blob reads.
fn read_chunk(opener: &Opener) -> u64 {
    let full = u64::from(opener.header().segment_size().get()) + crate::aead::TAG_LEN as u64;
    full * (1024 * 1024 / full).max(1)
}

/// Counts, limits and (optionally) hashes the plaintext on its way in.
struct Metered<'a, S> {
    inner: S,
    size: &'a mut u64,
    max: Option<u64>,
    hasher: Option<&'a mut Sha256>,
}

impl<S> Stream for Metered<'_, S>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                *this.size += chunk.len() as u64;
                if this.max.is_some_and(|m| *this.size > m) {
                    return Poll::Ready(Some(Err(Error::TooLarge)));
                }
                if let Some(h) = this.hasher.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            other => other,
        }
    }
}

impl Tenant {
    /// The applicant's key, created (and wrapped under the current root key)
    /// on first use when `create` is set; else [`Error::NotFound`].
    async fn applicant_key(
        &self,
        applicant: &ApplicantId,
        create: bool,
    ) -> Result<(ApplicantKey, u32)> {
        let meta = &self.inner().meta;
        let keys: &dyn KeyProvider = &*self.inner().keys;
        let row = match meta.applicant_key(self.id, applicant).await? {
            Some(row) => row,
            None if create => {
                let key = ApplicantKey::generate()?;
                let root = keys.current_version();
                let id = ApplicantKeyId {
                    tenant: self.id,
                    applicant: applicant.clone(),
                    version: APPLICANT_KEY_VERSION,
                };
                let row = ApplicantKeyRow {
                    key_version: APPLICANT_KEY_VERSION,
                    root_key_version: root.get(),
                    wrapped_key: wrap_applicant_key(keys, root, &id, &key)?,
                };
                meta.insert_applicant_if_absent(self.id, applicant, &row)
                    .await?;
                // A concurrent first put may have won the insert: use
                // whatever is stored.
                meta.applicant_key(self.id, applicant)
                    .await?
                    .ok_or(Error::NotFound)?
            }
            None => return Err(Error::NotFound),
        };
        let id = ApplicantKeyId {
            tenant: self.id,
            applicant: applicant.clone(),
            version: row.key_version,
        };
        let root = crate::keys::RootKeyVersion::new(row.root_key_version)
            .map_err(|_| Error::Corrupt("root key version 0"))?;
        let key = unwrap_applicant_key(keys, root, &id, &row.wrapped_key)?;
        Ok((key, row.key_version))
    }

    fn context(
        &self,
        applicant: &ApplicantId,
        id: DocumentId,
        category: Category,
    ) -> Result<StreamContext> {
        StreamContext::new(
            self.id.as_bytes(),
            applicant.as_str().as_bytes(),
            id.as_bytes(),
            category.as_str().as_bytes(),
        )
    }

    fn data_key_id(&self, applicant: &ApplicantId, version: u32, id: DocumentId) -> DataKeyId {
        DataKeyId {
            applicant_key: ApplicantKeyId {
                tenant: self.id,
                applicant: applicant.clone(),
                version,
            },
            document: id,
        }
    }

    /// Stores a document, streaming `body` (any size) through the sealer
    /// into the blob store. Acknowledged (returns `Ok`) only once the blob is
    /// durable and the metadata row committed; on any error nothing of the
    /// document is visible, and whatever was written is removed (or left to
    /// [`crate::vault::Vault::sweep`] if removal itself fails).
    pub async fn put<S>(&self, req: PutRequest, body: S) -> Result<DocumentInfo>
    where
        S: Stream<Item = Result<Bytes>> + Send + Unpin,
    {
        req.validate()?;
        let inner = self.inner();
        let (ak, ak_version) = self.applicant_key(&req.applicant, true).await?;
        let id = DocumentId::random();
        let blob = BlobName::random();
        let dk = DataKey::generate()?;
        let ctx = self.context(&req.applicant, id, req.category)?;
        let sealer = Sealer::new(&dk, &ctx, inner.params)?;
        let wrapped_key =
            wrap_data_key(&ak, &self.data_key_id(&req.applicant, ak_version, id), &dk)?;
        drop((ak, dk));
        let file_name = req
            .file_name
            .as_ref()
            .map(|n| sealer.metadata().seal(FILE_NAME_FIELD, n.as_bytes()))
            .transpose()?;
        let created_at = now_ms();
        inner
            .meta
            .insert_pending(&NewDocument {
                tenant: self.id,
                id,
                applicant: req.applicant.clone(),
                blob,
                category: req.category,
                content_type: req.content_type.clone(),
                file_name,
                header: *sealer.header(),
                wrapped_key,
                applicant_key_version: ak_version,
                created_at,
            })
            .await?;

        match self.upload_and_commit(&req, id, blob, sealer, body).await {
            Ok((size, sha256, closed_at, held)) => {
                let policy = self.retention_policy().await?;
                Ok(DocumentInfo {
                    id,
                    retain_until_ms: policy.retain_until(
                        req.category,
                        closed_at,
                        now_ms(),
                        now_ms(),
                    ),
                    applicant: req.applicant,
                    category: req.category,
                    content_type: req.content_type,
                    file_name: req.file_name,
                    size,
                    sha256,
                    created_at_ms: created_at,
                    legal_hold: held,
                })
            }
            Err(e) => {
                // Best effort: what is left is invisible, and the sweep
                // removes it.
                // The pending row first: if it is gone or committed (an
                // ambiguous commit failure), the blob is left alone.
                if let Ok(true) = inner.meta.delete_pending(self.id, id).await {
                    let _ = inner.blobs.delete(blob).await;
                }
                Err(e)
            }
        }
    }

    /// Streams the sealed body into the blob, checks size and digest, and
    /// commits the row. Returns the plaintext size and SHA-256 (if computed).
    async fn upload_and_commit<S>(
        &self,
        req: &PutRequest,
        id: DocumentId,
        blob: BlobName,
        sealer: Sealer,
        body: S,
    ) -> Result<(u64, Option<[u8; 32]>, Option<i64>, bool)>
    where
        S: Stream<Item = Result<Bytes>> + Send + Unpin,
    {
        let inner = self.inner();
        let mut size = 0u64;
        let mut hasher = (req.compute_sha256 || req.expected_sha256.is_some()).then(Sha256::new);
        let written = {
            let metered = Metered {
                inner: body,
                size: &mut size,
                max: req.max_size,
                hasher: hasher.as_mut(),
            };
            inner
                .blobs
                .put_stream(blob, seal_stream(sealer, metered))
                .await?
        };
        let sha256: Option<[u8; 32]> = hasher.map(|h| h.finalize().into());
        if let (Some(expected), Some(got)) = (req.expected_sha256, sha256) {
            if !bool::from(expected.ct_eq(&got)) {
                return Err(Error::DigestMismatch);
            }
        }
        let layout = Layout::for_plaintext_len(inner.params.segment_size, size)?;
        if written != layout.ciphertext_len() {
            return Err(Error::Corrupt(
                "sealed length differs from the plaintext's layout",
            ));
        }
        // The audit record and the commit are one transaction: no record,
        // no document.
        let mut tx = inner.meta.begin().await?;
        inner
            .meta
            .append_audit(
                &mut tx,
                &inner.audit_key,
                &self.event("document.put", format!("document:{id}"), Outcome::Ok),
            )
            .await?;
        inner
            .meta
            .commit_document(&mut tx, self.id, id, size, written, sha256)
            .await?;
        // Activity on the application restarts its inactivity clock; the
        // same transaction reads whether the application was closed.
        let (closed_at, held) = inner
            .meta
            .touch_applicant_tx(&mut tx, self.id, &req.applicant)
            .await?;
        tx.commit().await?;
        Ok((size, sha256, closed_at, held))
    }

    /// Unwraps a document's keys, checks its header and returns the opener
    /// with the layout of its stream.
    async fn open_row(&self, row: &DocumentRow) -> Result<(Opener, Layout)> {
        let (ak, ak_version) = self.applicant_key(&row.applicant, false).await?;
        self.open_with(&ak, ak_version, row)
    }

    fn open_with(
        &self,
        ak: &ApplicantKey,
        ak_version: u32,
        row: &DocumentRow,
    ) -> Result<(Opener, Layout)> {
        // The query was scoped by tenant; this is defence in depth.
        if row.tenant != self.id {
            return Err(Error::NotFound);
        }
        if ak_version != row.applicant_key_version {
            return Err(Error::Corrupt(
                "document wrapped under an unknown applicant key version",
            ));
        }
        let dk = unwrap_data_key(
            ak,
            &self.data_key_id(&row.applicant, ak_version, row.id),
            &row.wrapped_key,
        )?;
        let ctx = self.context(&row.applicant, row.id, row.category)?;
        let opener = Opener::new(&dk, &ctx, &row.header, self.inner().params.backend)?;
        let layout =
            Layout::from_ciphertext_len(opener.header().segment_size(), row.ciphertext_len)?;
        if layout.plaintext_len() != row.plaintext_len {
            return Err(Error::Corrupt("recorded sizes disagree"));
        }
        Ok((opener, layout))
    }

    fn info(row: &DocumentRow, opener: &Opener, policy: &RetentionPolicy) -> Result<DocumentInfo> {
        let file_name = row
            .file_name
            .as_ref()
            .map(|sealed| {
                let bytes = opener.metadata().open(FILE_NAME_FIELD, sealed)?;
                String::from_utf8(bytes).map_err(|_| Error::Corrupt("file name is not UTF-8"))
            })
            .transpose()?;
        Ok(DocumentInfo {
            id: row.id,
            applicant: row.applicant.clone(),
            category: row.category,
            content_type: row.content_type.clone(),
            file_name,
            size: row.plaintext_len,
            sha256: row.sha256,
            created_at_ms: row.created_at,
            legal_hold: row.legal_hold || row.applicant_hold,
            retain_until_ms: policy.retain_until(
                row.category,
                row.closed_at,
                row.last_activity_at,
                now_ms(),
            ),
        })
    }

    /// A document's metadata (file name decrypted).
    pub async fn head(&self, id: DocumentId) -> Result<DocumentInfo> {
        let row = self.inner().meta.document(self.id, id).await?;
        let (opener, _) = self.open_row(&row).await?;
        let info = Self::info(&row, &opener, &self.retention_policy().await?)?;
        // Metadata holds the file name, personal data: audited like a read.
        self.vault
            .audit(self.event("document.head", format!("document:{id}"), Outcome::Ok))
            .await?;
        Ok(info)
    }

    /// The whole document, streamed.
    pub async fn get(&self, id: DocumentId) -> Result<Download> {
        self.download_inner(id, |n| Ok(0..n), true).await
    }

    /// Plaintext bytes `range` of a document (end exclusive), streamed;
    /// fetches only the ciphertext segments that cover the range.
    /// [`Error::RangeOutOfBounds`] if the range is not within the document.
    pub async fn get_range(&self, id: DocumentId, range: Range<u64>) -> Result<Download> {
        self.download_inner(id, move |_| Ok(range), true).await
    }

    /// Like [`Tenant::get_range`], with the range chosen from the
    /// document's plaintext size (for suffix and open-ended ranges) in the
    /// same lookup; an error from `choose` ends the call before anything is
    /// audited or read.
    pub async fn get_range_with(
        &self,
        id: DocumentId,
        choose: impl FnOnce(u64) -> Result<Range<u64>>,
    ) -> Result<Download> {
        self.download_inner(id, choose, true).await
    }

    /// The whole plaintext without an audit record of its own, for an
    /// export (audited as one action).
    pub(crate) async fn download_unaudited(
        &self,
        id: DocumentId,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        Ok(self.download_inner(id, |n| Ok(0..n), false).await?.body)
    }

    async fn download_inner(
        &self,
        id: DocumentId,
        choose: impl FnOnce(u64) -> Result<Range<u64>>,
        audit: bool,
    ) -> Result<Download> {
        let row = self.inner().meta.document(self.id, id).await?;
        let (opener, layout) = self.open_row(&row).await?;
        let info = Self::info(&row, &opener, &self.retention_policy().await?)?;
        let range = choose(layout.plaintext_len())?;
        let plan = layout.plan(range.clone())?;
        // No audit record, no plaintext.
        if audit {
            self.vault
                .audit(self.event(
                    "document.read",
                    format!("document:{id} bytes:{}-{}", range.start, range.end),
                    Outcome::Ok,
                ))
                .await?;
        }
        let ciphertext = self
            .inner()
            .blobs
            .get_range(
                row.blob,
                plan.ciphertext(),
                row.ciphertext_len,
                read_chunk(&opener),
            )
            .await?;
        Ok(Download {
            info,
            range,
            body: open_stream(opener, plan, ciphertext).boxed(),
        })
    }

    /// One page of an applicant's documents, oldest first (at most
    /// [`LIST_LIMIT_MAX`] per page). An applicant with no documents, or
    /// unknown to this tenant, gives an empty page.
    pub async fn list(
        &self,
        applicant: &ApplicantId,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<DocumentPage> {
        let limit = limit.clamp(1, LIST_LIMIT_MAX);
        let rows = self
            .inner()
            .meta
            .list_documents(
                self.id,
                applicant,
                after.map(|c| (c.created_at_ms, c.id)),
                limit,
            )
            .await?;
        let mut documents = Vec::with_capacity(rows.len());
        if !rows.is_empty() {
            let (ak, ak_version) = self.applicant_key(applicant, false).await?;
            let policy = self.retention_policy().await?;
            for row in &rows {
                let (opener, _) = self.open_with(&ak, ak_version, row)?;
                documents.push(Self::info(row, &opener, &policy)?);
            }
        }
        if !documents.is_empty() {
            self.vault
                .audit(self.event(
                    "document.list",
                    format!(
                        "applicant:{} documents:{}",
                        self.applicant_ref(applicant),
                        documents.len()
                    ),
                    Outcome::Ok,
                ))
                .await?;
        }
        let next = (rows.len() == limit as usize)
            .then(|| {
                rows.last().map(|r| ListCursor {
                    created_at_ms: r.created_at,
                    id: r.id,
                })
            })
            .flatten();
        Ok(DocumentPage { documents, next })
    }

    /// Deletes one document: its row, and with it its wrapped data key, goes
    /// first (from then on the blob is undecryptable noise), with the audit
    /// record in the same transaction; then its blob. If the blob removal
    /// fails, it stays queued and the next deletion or sweep removes it.
    /// A document under legal hold (its own or its applicant's) is refused
    /// with [`Error::LegalHold`], and the refusal is audited.
    pub async fn delete(&self, id: DocumentId) -> Result<()> {
        let inner = self.inner();
        let target = format!("document:{id}");
        let mut tx = inner.meta.begin().await?;
        // Hold and existence are checked under the audit lock, so a hold set
        // concurrently is either seen here or set after the delete.
        inner.meta.lock_audit(&mut tx).await?;
        match inner.meta.document_held_tx(&mut tx, self.id, id).await? {
            None => return Err(Error::NotFound),
            Some(true) => {
                drop(tx);
                self.vault
                    .audit(self.event("document.delete", target, Outcome::Denied))
                    .await?;
                return Err(Error::LegalHold);
            }
            Some(false) => {}
        }
        inner
            .meta
            .append_audit(
                &mut tx,
                &inner.audit_key,
                &self.event("document.delete", target, Outcome::Ok),
            )
            .await?;
        inner
            .meta
            .delete_documents_tx(&mut tx, self.id, &[id])
            .await?;
        tx.commit().await?;
        self.vault.drain_deleted_blobs().await;
        Ok(())
    }
}
