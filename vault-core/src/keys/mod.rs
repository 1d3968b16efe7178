//! The key hierarchy (`docs/KEYS.md`).
//!
//! ```text
//! root key (held by a KeyProvider, versioned)
//!   └─ wraps ─ applicant key (random, one per tenant + applicant, versioned)
//!                └─ wraps ─ document data key (random, one per document)
//!                             └─ HKDF ─ segment key, commitment, metadata key
//! ```
//!
//! Wrapping is AES-256-GCM under a key-encryption key derived from the
//! wrapping key with HKDF-SHA256 (a label per level), with a random 96-bit
//! nonce and the wrapped key's ids as associated data: a wrapped key moved to
//! another tenant, applicant, version or document does not unwrap.

mod provider;
mod wrap;

pub use provider::{ENV_ROOT_KEYS, FileKeyProvider, KeyProvider, LocalKeyProvider, RootKeyVersion};
pub use wrap::{
    ApplicantKeyId, DataKeyId, WRAPPED_KEY_LEN, WRAPPED_KEY_MAX_LEN, WrappedKey,
    unwrap_applicant_key, unwrap_data_key, unwrap_system_key, wrap_applicant_key, wrap_data_key,
    wrap_system_key,
};

#[cfg(test)]
mod tests;
