//! The document vault's C ABI: a thin adapter over `vault_core`.
//!
//! Conventions (see `docs/FFI.md` and `include/vault.h`):
//! - every function returns a [`VaultStatus`] and writes results through
//!   out-pointers; on failure `vault_last_error()` describes it (per thread);
//! - handles are opaque; a `VaultHandle` may be used from several threads at
//!   once; `vault_close` frees it (NULL is fine, twice is not);
//! - buffers and strings the library returns are freed with
//!   `vault_buffer_free` / `vault_string_free`, never with `free()`;
//! - no panic crosses the boundary: every body runs inside one
//!   panic-catching wrapper;
//! - every pointer is checked; strings must be NUL-terminated UTF-8.
#![allow(unsafe_code)] // This crate is the C boundary; every block says why it is sound.
#![deny(missing_docs)]

mod boundary;
mod status;

use std::ffi::{CString, c_char};
use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use vault_core::audit::Actor;
use vault_core::category::Category;
use vault_core::config::ConfigFile;
use vault_core::format::{
    OpeningReader, SealParams, SealingWriter, StreamContext, open_to_vec, seal_to_vec,
};
use vault_core::ids::{ApplicantId, DocumentId, TenantId};
use vault_core::secret::DataKey;
use vault_core::vault::{DocumentInfo, PutRequest, Tenant, Vault};

use crate::boundary::{
    Fail, FfiResult, boundary, bytes_arg, null, opt_str_arg, str_arg, write_out,
};
pub use crate::status::VaultStatus;
use crate::status::last_error_ptr;

/// An open vault. Opaque to C.
pub struct VaultHandle {
    rt: tokio::runtime::Runtime,
    vault: Vault,
    actor: Actor,
}

impl std::fmt::Debug for VaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultHandle")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(v) => v,
    Err(_) => c"unknown",
};

fn invalid(msg: &str) -> Fail {
    Fail(VaultStatus::VaultInvalidArgument, msg.into())
}

fn handle<'a>(h: *const VaultHandle) -> Result<&'a VaultHandle, Fail> {
    // SAFETY: a non-null handle came from vault_open and has not been closed
    // (the documented contract); it is only read through a shared reference.
    unsafe { h.as_ref() }.ok_or_else(|| null("handle"))
}

impl VaultHandle {
    fn tenant(&self, tenant: &str) -> Result<Tenant, Fail> {
        let id = TenantId::parse(tenant)?;
        Ok(self
            .rt
            .block_on(self.vault.tenant(id, self.actor.clone()))?)
    }
}

/// Hands a byte vector to C.
///
/// # Safety
/// `out_data` and `out_len` are valid for writes.
unsafe fn give_bytes(v: Vec<u8>, out_data: *mut *mut u8, out_len: *mut usize) -> FfiResult {
    if out_data.is_null() || out_len.is_null() {
        return Err(null("output pointer"));
    }
    let b = v.into_boxed_slice();
    let len = b.len();
    let ptr = Box::into_raw(b) as *mut u8;
    // SAFETY: both checked non-null; the caller guarantees they are writable.
    unsafe {
        out_len.write(len);
        out_data.write(ptr);
    }
    Ok(())
}

/// Hands a string to C.
///
/// # Safety
/// `out` is valid for a write.
unsafe fn give_string(s: String, out: *mut *mut c_char) -> FfiResult {
    if out.is_null() {
        return Err(null("output string pointer"));
    }
    let c =
        CString::new(s).map_err(|_| Fail(VaultStatus::VaultInternal, "string with NUL".into()))?;
    // SAFETY: forwarded contract.
    unsafe { write_out(out, c.into_raw(), "output string pointer") }
}

fn info_json(i: &DocumentInfo) -> String {
    serde_json::json!({
        "id": i.id.to_string(),
        "applicant": i.applicant.as_str(),
        "category": i.category.as_str(),
        "content_type": i.content_type,
        "file_name": i.file_name,
        "size": i.size,
        "sha256": i.sha256.map(|h| h.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        "created_at_ms": i.created_at_ms,
        "legal_hold": i.legal_hold,
        "retain_until_ms": i.retain_until_ms,
    })
    .to_string()
}

// ---------------------------------------------------------------------------
// Library

/// The library version, a static string (never freed).
#[unsafe(no_mangle)]
pub extern "C" fn vault_version() -> *const c_char {
    VERSION.as_ptr()
}

/// A static description of `status` (never freed); unknown values give
/// "unknown status".
#[unsafe(no_mangle)]
pub extern "C" fn vault_status_str(status: u32) -> *const c_char {
    use VaultStatus::*;
    let all = [
        VaultOk,
        VaultNullPointer,
        VaultInvalidArgument,
        VaultInvalidUtf8,
        VaultNotFound,
        VaultAuthentication,
        VaultLegalHold,
        VaultTooLarge,
        VaultDigestMismatch,
        VaultRangeOutOfBounds,
        VaultAlreadyExists,
        VaultMalformed,
        VaultStorage,
        VaultDatabase,
        VaultIo,
        VaultKeyProvider,
        VaultConfig,
        VaultCorrupt,
        VaultPanic,
        VaultInternal,
    ];
    all.iter()
        .find(|s| **s as u32 == status)
        .map(|s| s.message().as_ptr())
        .unwrap_or(c"unknown status".as_ptr())
}

/// The message of the last failure on the calling thread ("" after a
/// success). Valid until the next vault call on this thread; never freed.
#[unsafe(no_mangle)]
pub extern "C" fn vault_last_error() -> *const c_char {
    last_error_ptr()
}

/// Frees a buffer returned by this library (`data`, `len` exactly as
/// returned). NULL is fine; freeing twice is not.
///
/// # Safety
/// `data` is NULL or a buffer from this library not yet freed, of length `len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_buffer_free(data: *mut u8, len: usize) {
    if !data.is_null() {
        // SAFETY: the pointer and length came from Box<[u8]>::into_raw in
        // give_bytes, and the caller frees it once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len)) });
    }
}

/// Frees a string returned by this library. NULL is fine; twice is not.
///
/// # Safety
/// `s` is NULL or a string from this library not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: came from CString::into_raw in give_string, freed once.
        drop(unsafe { CString::from_raw(s) });
    }
}

// ---------------------------------------------------------------------------
// Opening

/// Opens the vault described by the configuration file at `config_path`,
/// acting as `actor` (recorded in the audit log: an API key id, a job name;
/// 1-128 of A-Za-z0-9._:@-). Writes the handle to `*out`.
///
/// # Safety
/// Strings are NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_open(
    config_path: *const c_char,
    actor: *const c_char,
    out: *mut *mut VaultHandle,
) -> VaultStatus {
    boundary(|| {
        // SAFETY: the caller's contract on each pointer.
        let (path, actor) = unsafe {
            (
                str_arg(config_path, "config_path")?,
                str_arg(actor, "actor")?,
            )
        };
        if out.is_null() {
            return Err(null("out"));
        }
        let actor = Actor::new(actor)?;
        let config = ConfigFile::load(Path::new(path))?.vault_config()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Fail(VaultStatus::VaultInternal, format!("runtime: {e}")))?;
        let vault = rt.block_on(Vault::open(config))?;
        let h = Box::into_raw(Box::new(VaultHandle { rt, vault, actor }));
        // SAFETY: `out` checked non-null; writable per contract.
        unsafe { out.write(h) };
        Ok(())
    })
}

/// Closes a handle and frees it. NULL is fine; closing twice, or using the
/// handle afterwards, is not.
///
/// # Safety
/// `h` is NULL or a handle from `vault_open` not yet closed, and no other
/// thread is using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_close(h: *mut VaultHandle) {
    let _ = boundary(|| {
        if !h.is_null() {
            // SAFETY: the pointer came from Box::into_raw in vault_open and
            // is closed once.
            let h = unsafe { Box::from_raw(h) };
            h.rt.block_on(h.vault.close());
        }
        Ok(())
    });
}

/// Creates a tenant and writes its id (a string to free) to `*out_id`.
///
/// # Safety
/// `h` is an open handle; strings are NUL-terminated; `out_id` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_create_tenant(
    h: *const VaultHandle,
    name: *const c_char,
    out_id: *mut *mut c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let name = unsafe { str_arg(name, "name")? };
        if out_id.is_null() {
            return Err(null("out_id"));
        }
        let id = h.rt.block_on(h.vault.create_tenant(name, &h.actor))?;
        // SAFETY: caller's contract.
        unsafe { give_string(id.to_string(), out_id) }
    })
}

// ---------------------------------------------------------------------------
// Documents

/// Common arguments of the put functions.
struct PutArgs<'a> {
    tenant: &'a str,
    req: PutRequest,
}

/// # Safety
/// Strings NUL-terminated (file_name may be NULL).
unsafe fn put_args<'a>(
    tenant: *const c_char,
    applicant: *const c_char,
    category: *const c_char,
    file_name: *const c_char,
    content_type: *const c_char,
) -> Result<PutArgs<'a>, Fail> {
    // SAFETY: caller's contract on each pointer.
    let (tenant, applicant, category, file_name, content_type) = unsafe {
        (
            str_arg(tenant, "tenant")?,
            str_arg(applicant, "applicant")?,
            str_arg(category, "category")?,
            opt_str_arg(file_name, "file_name")?,
            str_arg(content_type, "content_type")?,
        )
    };
    let mut req = PutRequest::new(
        ApplicantId::new(applicant)?,
        category.parse::<Category>()?,
        content_type,
    );
    req.file_name = file_name.map(str::to_owned);
    Ok(PutArgs { tenant, req })
}

/// Stores `len` bytes at `data` as a document and writes its id (a string
/// to free) to `*out_id`. `file_name` may be NULL.
///
/// # Safety
/// `h` open; strings NUL-terminated; `data` readable for `len` bytes;
/// `out_id` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_put(
    h: *const VaultHandle,
    tenant: *const c_char,
    applicant: *const c_char,
    category: *const c_char,
    file_name: *const c_char,
    content_type: *const c_char,
    data: *const u8,
    len: usize,
    out_id: *mut *mut c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (args, data) = unsafe {
            (
                put_args(tenant, applicant, category, file_name, content_type)?,
                bytes_arg(data, len, "data")?,
            )
        };
        if out_id.is_null() {
            return Err(null("out_id"));
        }
        let t = h.tenant(args.tenant)?;
        // Copied lazily in small pieces while the put runs (the caller's
        // buffer outlives this blocking call), not all at once up front.
        let chunks = data
            .chunks(256 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)));
        let info =
            h.rt.block_on(t.put(args.req, futures::stream::iter(chunks)))?;
        // SAFETY: caller's contract.
        unsafe { give_string(info.id.to_string(), out_id) }
    })
}

/// Stores the file at `path` (streamed; any size) as a document and writes
/// its id to `*out_id`.
///
/// # Safety
/// As `vault_put`, with `path` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_put_file(
    h: *const VaultHandle,
    tenant: *const c_char,
    applicant: *const c_char,
    category: *const c_char,
    file_name: *const c_char,
    content_type: *const c_char,
    path: *const c_char,
    out_id: *mut *mut c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (args, path) = unsafe {
            (
                put_args(tenant, applicant, category, file_name, content_type)?,
                str_arg(path, "path")?,
            )
        };
        if out_id.is_null() {
            return Err(null("out_id"));
        }
        let t = h.tenant(args.tenant)?;
        let info = h.rt.block_on(async {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(vault_core::Error::Io)?;
            let body = tokio_util_stream(file);
            t.put(args.req, body).await
        })?;
        // SAFETY: caller's contract.
        unsafe { give_string(info.id.to_string(), out_id) }
    })
}

/// A file as a stream of 1 MiB chunks.
fn tokio_util_stream(
    file: tokio::fs::File,
) -> futures::stream::BoxStream<'static, vault_core::Result<Bytes>> {
    futures::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buf = vec![0u8; 1 << 20];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(vault_core::Error::Io(e)), None)),
        }
    })
    .boxed()
}

fn read_doc(
    h: &VaultHandle,
    tenant: &str,
    id: &str,
    range: Option<(u64, u64)>,
) -> Result<Vec<u8>, Fail> {
    let t = h.tenant(tenant)?;
    let id = DocumentId::parse(id)?;
    Ok(h.rt.block_on(async {
        let d = match range {
            Some((a, b)) if a <= b => t.get_range(id, a..b).await?,
            Some(_) => return Err(vault_core::Error::RangeOutOfBounds),
            None => t.get(id).await?,
        };
        let mut out = Vec::with_capacity(usize::try_from(d.range.end - d.range.start).unwrap_or(0));
        let mut body = d.body;
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    })?)
}

/// Reads a whole document into a new buffer (`*out_data`, `*out_len`;
/// free with `vault_buffer_free`).
///
/// # Safety
/// `h` open; strings NUL-terminated; out-pointers writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_get(
    h: *const VaultHandle,
    tenant: *const c_char,
    id: *const c_char,
    out_data: *mut *mut u8,
    out_len: *mut usize,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, id) = unsafe { (str_arg(tenant, "tenant")?, str_arg(id, "id")?) };
        if out_data.is_null() || out_len.is_null() {
            return Err(null("output pointer"));
        }
        let v = read_doc(h, tenant, id, None)?;
        // SAFETY: caller's contract.
        unsafe { give_bytes(v, out_data, out_len) }
    })
}

/// Reads plaintext bytes `[start, end)` of a document into a new buffer.
///
/// # Safety
/// As `vault_get`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_get_range(
    h: *const VaultHandle,
    tenant: *const c_char,
    id: *const c_char,
    start: u64,
    end: u64,
    out_data: *mut *mut u8,
    out_len: *mut usize,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, id) = unsafe { (str_arg(tenant, "tenant")?, str_arg(id, "id")?) };
        if out_data.is_null() || out_len.is_null() {
            return Err(null("output pointer"));
        }
        let v = read_doc(h, tenant, id, Some((start, end)))?;
        // SAFETY: caller's contract.
        unsafe { give_bytes(v, out_data, out_len) }
    })
}

/// Writes a whole document to the file at `path` (streamed). The file
/// appears only when complete: the bytes go to `path.partial` first, which
/// is removed on failure.
///
/// # Safety
/// `h` open; strings NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_get_to_file(
    h: *const VaultHandle,
    tenant: *const c_char,
    id: *const c_char,
    path: *const c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, id, path) = unsafe {
            (
                str_arg(tenant, "tenant")?,
                str_arg(id, "id")?,
                str_arg(path, "path")?,
            )
        };
        let t = h.tenant(tenant)?;
        let id = DocumentId::parse(id)?;
        let partial = format!("{path}.partial");
        let r: Result<(), vault_core::Error> = h.rt.block_on(async {
            let mut body = t.get(id).await?.body;
            let mut f = create_private(&partial)?;
            while let Some(chunk) = body.next().await {
                f.write_all(&chunk?).map_err(vault_core::Error::Io)?;
            }
            f.sync_all().map_err(vault_core::Error::Io)?;
            std::fs::rename(&partial, path).map_err(vault_core::Error::Io)
        });
        if r.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        Ok(r?)
    })
}

/// Writes a document's metadata as a JSON string (free with
/// `vault_string_free`): id, applicant, category, content_type, file_name,
/// size, sha256, created_at_ms, legal_hold, retain_until_ms.
///
/// # Safety
/// `h` open; strings NUL-terminated; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_head(
    h: *const VaultHandle,
    tenant: *const c_char,
    id: *const c_char,
    out_json: *mut *mut c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, id) = unsafe { (str_arg(tenant, "tenant")?, str_arg(id, "id")?) };
        if out_json.is_null() {
            return Err(null("out_json"));
        }
        let t = h.tenant(tenant)?;
        let info = h.rt.block_on(t.head(DocumentId::parse(id)?))?;
        // SAFETY: caller's contract.
        unsafe { give_string(info_json(&info), out_json) }
    })
}

/// Deletes a document (its wrapped key first, then its blob).
///
/// # Safety
/// `h` open; strings NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_delete(
    h: *const VaultHandle,
    tenant: *const c_char,
    id: *const c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, id) = unsafe { (str_arg(tenant, "tenant")?, str_arg(id, "id")?) };
        let t = h.tenant(tenant)?;
        Ok(h.rt.block_on(t.delete(DocumentId::parse(id)?))?)
    })
}

// ---------------------------------------------------------------------------
// Lifecycle

/// Closes an applicant's application now (starts the retention clock).
///
/// # Safety
/// `h` open; strings NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_close_application(
    h: *const VaultHandle,
    tenant: *const c_char,
    applicant: *const c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, applicant) =
            unsafe { (str_arg(tenant, "tenant")?, str_arg(applicant, "applicant")?) };
        let t = h.tenant(tenant)?;
        Ok(h.rt.block_on(t.close_application(&ApplicantId::new(applicant)?, None))?)
    })
}

/// Reopens an applicant's application.
///
/// # Safety
/// `h` open; strings NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_open_application(
    h: *const VaultHandle,
    tenant: *const c_char,
    applicant: *const c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, applicant) =
            unsafe { (str_arg(tenant, "tenant")?, str_arg(applicant, "applicant")?) };
        let t = h.tenant(tenant)?;
        Ok(h.rt.block_on(t.open_application(&ApplicantId::new(applicant)?))?)
    })
}

/// Sets (`hold` true) or clears the legal hold on a document.
///
/// # Safety
/// `h` open; strings NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_set_document_hold(
    h: *const VaultHandle,
    tenant: *const c_char,
    id: *const c_char,
    hold: bool,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, id) = unsafe { (str_arg(tenant, "tenant")?, str_arg(id, "id")?) };
        let t = h.tenant(tenant)?;
        Ok(h.rt.block_on(t.set_document_hold(DocumentId::parse(id)?, hold))?)
    })
}

/// Sets or clears the legal hold on an applicant.
///
/// # Safety
/// `h` open; strings NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_set_applicant_hold(
    h: *const VaultHandle,
    tenant: *const c_char,
    applicant: *const c_char,
    hold: bool,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, applicant) =
            unsafe { (str_arg(tenant, "tenant")?, str_arg(applicant, "applicant")?) };
        let t = h.tenant(tenant)?;
        Ok(h.rt.block_on(t.set_applicant_hold(&ApplicantId::new(applicant)?, hold))?)
    })
}

/// Erases an applicant and writes the erasure receipt (JSON, no personal
/// data) to `*out_receipt`.
///
/// # Safety
/// `h` open; strings NUL-terminated; `out_receipt` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_erase_applicant(
    h: *const VaultHandle,
    tenant: *const c_char,
    applicant: *const c_char,
    out_receipt: *mut *mut c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let (tenant, applicant) =
            unsafe { (str_arg(tenant, "tenant")?, str_arg(applicant, "applicant")?) };
        if out_receipt.is_null() {
            return Err(null("out_receipt"));
        }
        let t = h.tenant(tenant)?;
        let r =
            h.rt.block_on(t.erase_applicant(&ApplicantId::new(applicant)?))?;
        // SAFETY: caller's contract.
        unsafe { give_string(r.to_json(), out_receipt) }
    })
}

/// Purges what is due as of `as_of_ms` (Unix milliseconds) in one tenant,
/// or in every tenant when `tenant` is NULL; with `dry_run`, removes
/// nothing and reports what would go. Writes the number of documents to
/// `*out_count` and a JSON report (per tenant: document ids, counts per
/// category, held) to `*out_report`.
///
/// # Safety
/// `h` open; `tenant` NULL or NUL-terminated; out-pointers writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_purge(
    h: *const VaultHandle,
    tenant: *const c_char,
    as_of_ms: i64,
    dry_run: bool,
    out_count: *mut u64,
    out_report: *mut *mut c_char,
) -> VaultStatus {
    boundary(|| {
        let h = handle(h)?;
        // SAFETY: caller's contract.
        let tenant = unsafe { opt_str_arg(tenant, "tenant")? };
        if out_count.is_null() || out_report.is_null() {
            return Err(null("output pointer"));
        }
        let reports = match tenant {
            Some(t) => {
                let t = h.tenant(t)?;
                vec![(t.id(), h.rt.block_on(t.purge(as_of_ms, dry_run))?)]
            }
            None => {
                h.rt.block_on(h.vault.purge_all(as_of_ms, dry_run, &h.actor))?
            }
        };
        let count: u64 = reports.iter().map(|(_, r)| r.documents.len() as u64).sum();
        let json = serde_json::json!({
            "as_of_ms": as_of_ms,
            "dry_run": dry_run,
            "documents": count,
            "tenants": reports.iter().map(|(id, r)| serde_json::json!({
                "tenant_id": id.to_string(),
                "documents": r.documents.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                "by_category": r.by_category.iter().map(|(c, n)| (c.as_str().to_owned(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
                "held": r.held,
            })).collect::<Vec<_>>(),
        });
        // SAFETY: checked non-null; caller's contract.
        unsafe {
            out_count.write(count);
            give_string(json.to_string(), out_report)
        }
    })
}

// ---------------------------------------------------------------------------
// The bare stream format with a caller-held key

/// # Safety
/// `key` readable for `key_len`; strings NUL-terminated.
unsafe fn stream_args(
    key: *const u8,
    key_len: usize,
    tenant: *const c_char,
    applicant: *const c_char,
    document: *const c_char,
    category: *const c_char,
) -> Result<(DataKey, StreamContext), Fail> {
    // SAFETY: caller's contract on each pointer.
    let (key, t, a, d, c) = unsafe {
        (
            bytes_arg(key, key_len, "key")?,
            str_arg(tenant, "tenant")?,
            str_arg(applicant, "applicant")?,
            str_arg(document, "document")?,
            str_arg(category, "category")?,
        )
    };
    if key.len() != 32 {
        return Err(invalid("key must be exactly 32 bytes"));
    }
    Ok((
        DataKey::from_slice(key)?,
        StreamContext::new(t.as_bytes(), a.as_bytes(), d.as_bytes(), c.as_bytes())?,
    ))
}

/// Seals `in_len` bytes into a new buffer in the vault stream format
/// (`docs/FORMAT.md`) under the caller's 32-byte key and the context
/// (tenant, applicant, document, category; each used as UTF-8 bytes).
///
/// # Safety
/// Pointers readable for their lengths; strings NUL-terminated; out-pointers
/// writable. `input` may overlap nothing the library writes (it writes only
/// a new buffer).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_stream_seal(
    key: *const u8,
    key_len: usize,
    tenant: *const c_char,
    applicant: *const c_char,
    document: *const c_char,
    category: *const c_char,
    input: *const u8,
    in_len: usize,
    out_data: *mut *mut u8,
    out_len: *mut usize,
) -> VaultStatus {
    boundary(|| {
        // SAFETY: caller's contract.
        let ((key, ctx), input) = unsafe {
            (
                stream_args(key, key_len, tenant, applicant, document, category)?,
                bytes_arg(input, in_len, "input")?,
            )
        };
        let v = seal_to_vec(&key, &ctx, SealParams::default(), input)?;
        // SAFETY: caller's contract.
        unsafe { give_bytes(v, out_data, out_len) }
    })
}

/// Opens a sealed buffer into a new buffer; any tampering, truncation,
/// wrong key or wrong context gives `VaultAuthentication` and no output.
///
/// # Safety
/// As `vault_stream_seal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_stream_open(
    key: *const u8,
    key_len: usize,
    tenant: *const c_char,
    applicant: *const c_char,
    document: *const c_char,
    category: *const c_char,
    input: *const u8,
    in_len: usize,
    out_data: *mut *mut u8,
    out_len: *mut usize,
) -> VaultStatus {
    boundary(|| {
        // SAFETY: caller's contract.
        let ((key, ctx), input) = unsafe {
            (
                stream_args(key, key_len, tenant, applicant, document, category)?,
                bytes_arg(input, in_len, "input")?,
            )
        };
        let v = open_to_vec(&key, &ctx, input, Default::default())?;
        // SAFETY: caller's contract.
        unsafe { give_bytes(v, out_data, out_len) }
    })
}

/// Creates a new file readable by its owner only (plaintext may go into
/// it); refuses to follow or replace anything already at `path`.
fn create_private(path: &str) -> vault_core::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(vault_core::Error::Io)
}

fn file_op(
    in_path: &str,
    out_path: &str,
    op: impl FnOnce(std::fs::File, std::fs::File) -> vault_core::Result<()>,
) -> FfiResult {
    if Path::new(in_path) == Path::new(out_path) {
        return Err(invalid("input and output are the same file"));
    }
    let partial = format!("{out_path}.partial");
    let r = (|| {
        let i = std::fs::File::open(in_path).map_err(vault_core::Error::Io)?;
        let o = create_private(&partial)?;
        op(i, o)?;
        std::fs::rename(&partial, out_path).map_err(vault_core::Error::Io)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    Ok(r?)
}

/// Seals the file at `in_path` into `out_path` (streamed; memory bounded).
/// The output appears only when complete.
///
/// # Safety
/// As `vault_stream_seal`, with NUL-terminated paths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_stream_seal_file(
    key: *const u8,
    key_len: usize,
    tenant: *const c_char,
    applicant: *const c_char,
    document: *const c_char,
    category: *const c_char,
    in_path: *const c_char,
    out_path: *const c_char,
) -> VaultStatus {
    boundary(|| {
        // SAFETY: caller's contract.
        let ((key, ctx), i, o) = unsafe {
            (
                stream_args(key, key_len, tenant, applicant, document, category)?,
                str_arg(in_path, "in_path")?,
                str_arg(out_path, "out_path")?,
            )
        };
        file_op(i, o, |mut input, output| {
            let mut w = SealingWriter::new(
                std::io::BufWriter::new(output),
                &key,
                &ctx,
                SealParams::default(),
            )?;
            std::io::copy(&mut input, &mut w).map_err(vault_core::Error::from)?;
            let out = w.finish()?;
            out.into_inner()
                .map_err(|e| vault_core::Error::Io(e.into_error()))?
                .sync_all()
                .map_err(vault_core::Error::Io)
        })
    })
}

/// Opens the sealed file at `in_path` into `out_path` (streamed). On any
/// failure no output file remains.
///
/// # Safety
/// As `vault_stream_seal_file`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vault_stream_open_file(
    key: *const u8,
    key_len: usize,
    tenant: *const c_char,
    applicant: *const c_char,
    document: *const c_char,
    category: *const c_char,
    in_path: *const c_char,
    out_path: *const c_char,
) -> VaultStatus {
    boundary(|| {
        // SAFETY: caller's contract.
        let ((key, ctx), i, o) = unsafe {
            (
                stream_args(key, key_len, tenant, applicant, document, category)?,
                str_arg(in_path, "in_path")?,
                str_arg(out_path, "out_path")?,
            )
        };
        file_op(i, o, |input, mut output| {
            let mut r = OpeningReader::new(
                std::io::BufReader::new(input),
                &key,
                &ctx,
                Default::default(),
            )?;
            std::io::copy(&mut r, &mut output).map_err(vault_core::Error::from)?;
            output.sync_all().map_err(vault_core::Error::Io)
        })
    })
}

/// Panics inside the boundary (test builds only): returns `VaultPanic`.
#[cfg(feature = "test-panic")]
#[allow(clippy::panic)]
#[unsafe(no_mangle)]
pub extern "C" fn vault_test_panic() -> VaultStatus {
    boundary(|| panic!("deliberate test panic"))
}
