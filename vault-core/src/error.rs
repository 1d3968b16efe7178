//! The crate's error type.
//!
//! Every failure of authentication (a flipped bit, a wrong key, a wrong
//! context, a truncated, reordered or extended stream) is reported as the one
//! opaque [`Error::Authentication`]: callers, and so attackers, learn nothing
//! about which check failed. Structural problems with public header fields
//! (wrong magic, an unknown version) are reported precisely, since they
//! reveal nothing secret and help an operator find a misplaced file.

use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in vault-core.
///
/// Messages never contain key material, plaintext or file names.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data did not authenticate under this key and context: it was
    /// tampered with, truncated, reordered, extended, or the key or context
    /// is wrong. Deliberately says nothing more.
    #[error("authentication failed")]
    Authentication,
    /// The bytes are not a well-formed stream of a supported kind.
    #[error("malformed stream: {0}")]
    Format(#[from] FormatError),
    /// A requested plaintext byte range lies outside the document.
    #[error("byte range out of bounds")]
    RangeOutOfBounds,
    /// An argument broke a documented limit (the message names which).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The configuration file is missing, unreadable or invalid (the
    /// message says which and where, never a secret).
    #[error("configuration: {0}")]
    Config(String),
    /// A root key version that the key provider does not hold.
    #[error("root key version {0} is not loaded")]
    UnknownKeyVersion(u32),
    /// The key provider could not be loaded or used (the message names why,
    /// never the key).
    #[error("key provider: {0}")]
    KeyProvider(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// A streaming writer was used after an earlier write failed; its output
    /// is unusable.
    #[error("stream writer is unusable after an earlier error")]
    Poisoned,
    /// An I/O error from the underlying reader or writer.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    /// A missing, malformed, unknown, wrong, expired or revoked API key
    /// (deliberately one error).
    #[error("unauthorized")]
    Unauthorized,
    /// No such tenant, applicant or document in this tenant's scope. Another
    /// tenant's ids give exactly this error too.
    #[error("not found")]
    NotFound,
    /// The thing to create exists already (for example a tenant name).
    #[error("already exists")]
    AlreadyExists,
    /// The document or applicant is on legal hold: it cannot be deleted,
    /// purged or erased until the hold is cleared.
    #[error("legal hold")]
    LegalHold,
    /// A share link that was genuine but has expired, been revoked or been
    /// used up.
    #[error("link expired")]
    LinkExpired,
    /// The document is larger than the limit the caller set.
    #[error("document exceeds the size limit")]
    TooLarge,
    /// The plaintext's SHA-256 differs from the digest the client sent.
    #[error("content digest mismatch")]
    DigestMismatch,
    #[cfg(feature = "vault")]
    /// The blob store failed. The message is the store's own and names only
    /// random object ids.
    #[error("blob store error: {0}")]
    Storage(#[source] object_store::Error),
    #[cfg(feature = "vault")]
    /// The metadata database failed. Its message is kept out of `Display`
    /// (a database may quote row values); it is available as the source.
    #[error("metadata database error")]
    Database(#[source] sqlx::Error),
    /// Stored state contradicts itself (a row whose fields are impossible):
    /// a sign of tampering or a bug; the operation refuses to go on.
    #[error("inconsistent stored state: {0}")]
    Corrupt(&'static str),
}

#[cfg(feature = "vault")]
impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Error::NotFound,
            other => Error::Storage(other),
        }
    }
}

#[cfg(feature = "vault")]
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => Error::NotFound,
            other => Error::Database(other),
        }
    }
}

/// Why a stream's bytes are structurally invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The first four bytes are not the format's magic.
    #[error("not a vault stream (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// An algorithm id this build does not know.
    #[error("unsupported algorithm id {0}")]
    UnsupportedAlgorithm(u8),
    /// The segment size in the header is outside the allowed range.
    #[error("segment size {0} out of range")]
    SegmentSizeOutOfRange(u32),
    /// Fewer bytes than a whole header.
    #[error("header truncated")]
    HeaderTruncated,
    /// More segments than the nonce counter allows.
    #[error("stream longer than the format allows")]
    TooLong,
    /// A wrapped key blob of the wrong length or version.
    #[error("malformed wrapped key")]
    WrappedKey,
}

impl From<io::Error> for Error {
    /// Recovers a vault error that travelled through `std::io` (our readers
    /// and writers implement `Read`/`Write`), or wraps a genuine I/O error.
    fn from(e: io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(err) = inner.downcast::<Error>() {
                    return *err;
                }
                return Error::Io(io::Error::other("unrecognised inner error"));
            }
            return Error::Io(io::Error::other("unrecognised inner error"));
        }
        Error::Io(e)
    }
}

impl Error {
    /// Wraps this error for transport through a `std::io` interface;
    /// `Error::from(io_error)` recovers it.
    pub fn into_io(self) -> io::Error {
        match self {
            Error::Io(e) => e,
            other => {
                let kind = match other {
                    Error::Authentication | Error::Format(_) => io::ErrorKind::InvalidData,
                    Error::RangeOutOfBounds | Error::InvalidArgument(_) => {
                        io::ErrorKind::InvalidInput
                    }
                    _ => io::ErrorKind::Other,
                };
                io::Error::new(kind, other)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_round_trip_keeps_the_variant() {
        let e = Error::from(Error::Authentication.into_io());
        assert!(matches!(e, Error::Authentication));
        let e = Error::from(Error::Format(FormatError::BadMagic).into_io());
        assert!(matches!(e, Error::Format(FormatError::BadMagic)));
        let e = Error::from(io::Error::new(io::ErrorKind::UnexpectedEof, "eof"));
        assert!(matches!(e, Error::Io(ref io) if io.kind() == io::ErrorKind::UnexpectedEof));
    }
}
