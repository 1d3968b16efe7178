//! Status codes and the thread-local last error.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

use vault_core::Error;

/// Every function returns one of these. The numbers never change meaning;
/// retired numbers stay reserved.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultStatus {
    /// Success.
    VaultOk = 0,
    /// A required pointer was NULL.
    VaultNullPointer = 1,
    /// An argument broke a documented rule (length, range, format).
    VaultInvalidArgument = 2,
    /// A string argument was not valid UTF-8.
    VaultInvalidUtf8 = 3,
    /// No such tenant, applicant or document (another tenant's ids too).
    VaultNotFound = 10,
    /// Data did not authenticate: tampered, truncated, wrong key or context.
    VaultAuthentication = 11,
    /// A legal hold forbids the operation.
    VaultLegalHold = 12,
    /// The document exceeds the size limit.
    VaultTooLarge = 13,
    /// The plaintext's digest differs from the one given.
    VaultDigestMismatch = 14,
    /// A byte range outside the document.
    VaultRangeOutOfBounds = 15,
    /// The thing to create exists already.
    VaultAlreadyExists = 16,
    /// Bytes that are not a vault stream of a supported kind.
    VaultMalformed = 17,
    /// The blob store failed.
    VaultStorage = 20,
    /// The metadata database failed.
    VaultDatabase = 21,
    /// A file or other I/O error.
    VaultIo = 22,
    /// The key file or key provider could not be used.
    VaultKeyProvider = 23,
    /// The configuration file is missing or invalid.
    VaultConfig = 24,
    /// Stored state contradicts itself.
    VaultCorrupt = 25,
    /// A panic was caught at the boundary (a bug; the handle is still usable).
    VaultPanic = 98,
    /// Anything else.
    VaultInternal = 99,
}

impl VaultStatus {
    pub(crate) fn message(self) -> &'static std::ffi::CStr {
        match self {
            VaultStatus::VaultOk => c"ok",
            VaultStatus::VaultNullPointer => c"null pointer",
            VaultStatus::VaultInvalidArgument => c"invalid argument",
            VaultStatus::VaultInvalidUtf8 => c"string is not valid UTF-8",
            VaultStatus::VaultNotFound => c"not found",
            VaultStatus::VaultAuthentication => c"authentication failed",
            VaultStatus::VaultLegalHold => c"legal hold",
            VaultStatus::VaultTooLarge => c"too large",
            VaultStatus::VaultDigestMismatch => c"digest mismatch",
            VaultStatus::VaultRangeOutOfBounds => c"range out of bounds",
            VaultStatus::VaultAlreadyExists => c"already exists",
            VaultStatus::VaultMalformed => c"malformed stream",
            VaultStatus::VaultStorage => c"blob store error",
            VaultStatus::VaultDatabase => c"metadata database error",
            VaultStatus::VaultIo => c"I/O error",
            VaultStatus::VaultKeyProvider => c"key provider error",
            VaultStatus::VaultConfig => c"configuration error",
            VaultStatus::VaultCorrupt => c"inconsistent stored state",
            VaultStatus::VaultPanic => c"internal panic",
            VaultStatus::VaultInternal => c"internal error",
        }
    }
}

/// The one map from core errors to status codes.
pub(crate) fn status_of(e: &Error) -> VaultStatus {
    match e {
        Error::Authentication => VaultStatus::VaultAuthentication,
        Error::Format(_) => VaultStatus::VaultMalformed,
        Error::RangeOutOfBounds => VaultStatus::VaultRangeOutOfBounds,
        Error::InvalidArgument(_) => VaultStatus::VaultInvalidArgument,
        Error::UnknownKeyVersion(_) | Error::KeyProvider(_) => VaultStatus::VaultKeyProvider,
        Error::Config(_) => VaultStatus::VaultConfig,
        Error::Io(_) => VaultStatus::VaultIo,
        Error::NotFound => VaultStatus::VaultNotFound,
        Error::AlreadyExists => VaultStatus::VaultAlreadyExists,
        Error::LegalHold => VaultStatus::VaultLegalHold,
        Error::TooLarge => VaultStatus::VaultTooLarge,
        Error::DigestMismatch => VaultStatus::VaultDigestMismatch,
        Error::Storage(_) => VaultStatus::VaultStorage,
        Error::Database(_) => VaultStatus::VaultDatabase,
        Error::Corrupt(_) => VaultStatus::VaultCorrupt,
        _ => VaultStatus::VaultInternal,
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records the message of the last failure on this thread.
pub(crate) fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}
