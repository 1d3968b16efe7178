//! Per-stream key derivation and the key commitment check.

use subtle::ConstantTimeEq;

use super::context::StreamContext;
use super::header::{COMMITMENT_LEN, HEADER_PREFIX_LEN};
use crate::aead::{Aead, Backend};
use crate::error::{Error, Result};
use crate::kdf::{KEY_COMMITMENT, Kdf, METADATA_KEY, SEGMENT_KEY};
use crate::secret::{DataKey, Secret32};

/// The HKDF state of one stream: PRK = HKDF-Extract(salt, data key), and
/// every derivation's info = label || 0x00 || header prefix || context.
pub(crate) struct StreamKdf<'a> {
    kdf: Kdf,
    prefix: &'a [u8; HEADER_PREFIX_LEN],
    context: &'a StreamContext,
}

impl<'a> StreamKdf<'a> {
    pub(crate) fn new(
        key: &DataKey,
        salt: &[u8],
        prefix: &'a [u8; HEADER_PREFIX_LEN],
        context: &'a StreamContext,
    ) -> Self {
        Self {
            kdf: Kdf::new(salt, key.expose()),
            prefix,
            context,
        }
    }

    /// The 32-byte output for `label` (test vectors publish these).
    #[cfg(test)]
    pub(crate) fn derived_for_vectors(&self, label: &[u8]) -> [u8; 32] {
        *self.expand(label).expose()
    }

    fn expand(&self, label: &[u8]) -> Secret32 {
        self.kdf
            .expand(label, &[&self.prefix[..], self.context.encoded()])
    }

    /// The key commitment written into the header.
    pub(crate) fn commitment(&self) -> [u8; COMMITMENT_LEN] {
        *self.expand(KEY_COMMITMENT).expose()
    }

    /// Checks `expected` against the derived commitment in constant time.
    /// Only after this succeeds may a segment key be derived.
    pub(crate) fn verify_commitment(&self, expected: &[u8; COMMITMENT_LEN]) -> Result<()> {
        let ok: bool = self.commitment().ct_eq(expected).into();
        if ok {
            Ok(())
        } else {
            Err(Error::Authentication)
        }
    }

    /// The AES-256-GCM instance that seals and opens segments.
    pub(crate) fn segment_cipher(&self, backend: Backend) -> Result<Box<dyn Aead>> {
        backend.cipher(self.expand(SEGMENT_KEY).expose())
    }

    /// The AES-256-GCM instance that seals the document's own metadata.
    pub(crate) fn metadata_cipher(&self, backend: Backend) -> Result<Box<dyn Aead>> {
        backend.cipher(self.expand(METADATA_KEY).expose())
    }
}
