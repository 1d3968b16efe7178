//! The vault's streaming, seekable, key-committing AEAD format.
//!
//! A stream is a 74-byte header followed by the plaintext cut into segments
//! of a fixed size, each sealed with AES-256-GCM (`docs/FORMAT.md` is the
//! normative description, with test vectors in `vault-core/tests/vectors/`).
//!
//! ```text
//! stream  = header || seg_0 || ... || seg_{n-1}
//! header  = "DVLT" || version || algorithm || segment_size(be32) || salt(32) || commitment(32)
//! seg_i   = AES-256-GCM(segment_key, nonce(i, i == n-1), aad = "", pt_i) = ct_i || tag_i
//! nonce   = 0x00 * 7 || be32(i) || last_flag
//! ```
//!
//! The per-stream keys are derived from the document's [`DataKey`] with
//! HKDF-SHA256 (salt = the header's random salt, info = label || 0x00 ||
//! header[0..42] || context), so they are bound to every header field and to
//! the [`StreamContext`] (tenant, applicant, document, category). The header
//! carries a key commitment that is checked, in constant time, before any
//! segment is opened.
//!
//! The pieces, from the bottom up:
//! - [`Header`], [`SegmentSize`], [`StreamContext`]: the values a stream is
//!   made of;
//! - [`Sealer`] and [`Opener`]: sans-I/O sealing and opening of segments, used
//!   by every adapter below and by the vault's async storage code;
//! - [`RunIssuer`] and [`RunSealer`] ([`Sealer::into_runs`]): one stream
//!   sealed on several threads as it is read, each segment index issued once;
//! - [`SealingWriter`] (`std::io::Write`) and [`seal_stream`] (an async
//!   `Stream` of chunks); [`OpeningReader`] (`std::io::Read`) and
//!   [`open_stream`] (async chunks in, plaintext chunks out);
//! - [`Layout`] and [`SeekableOpener`]: random access that opens only the
//!   segments covering a requested plaintext range, over any [`ReadAt`].
//!
//! [`DataKey`]: crate::secret::DataKey

mod async_open;
mod context;
mod derive;
mod header;
mod layout;
mod metadata;
mod nonce;
mod open;
mod runs;
mod seal;

pub use async_open::open_stream;
pub use context::{CONTEXT_FIELD_MAX_LEN, StreamContext};
pub use header::{
    ALGORITHM_AES256GCM_HKDF_SHA256, COMMITMENT_LEN, DEFAULT_SEGMENT_SIZE, FORMAT_VERSION,
    HEADER_LEN, Header, MAGIC, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, SALT_LEN, SegmentSize,
};
pub use layout::{Layout, MAX_SEGMENTS, RangePlan, ReadAt, SeekableOpener};
pub use metadata::MetadataCipher;
pub use open::{Opener, OpeningReader, open_to_vec};
pub use runs::{RunIssuer, RunSealer, SegmentRun};
pub use seal::{SealParams, Sealer, SealingWriter, seal_stream, seal_to_vec};

#[cfg(test)]
mod tests;
