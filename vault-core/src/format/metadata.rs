//! Encryption of a document's own metadata (its file name) under the
//! stream's metadata key.

use std::fmt;

use crate::aead::{Aead, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};

/// Version byte of a sealed metadata field.
const METADATA_VERSION: u8 = 1;
/// Longest plaintext metadata field (bytes).
const METADATA_MAX_LEN: usize = 64 * 1024;

/// Seals and opens small metadata fields (such as a file name) under the
/// stream's metadata key. Obtained from a [`crate::format::Sealer`] or an
/// [`crate::format::Opener`], so it exists only after the key commitment has
/// been computed or verified.
///
/// A sealed field is `0x01 || nonce(12, random) || ciphertext || tag(16)`,
/// with the field's name as associated data, so a sealed file name cannot be
/// passed off as another field.
pub struct MetadataCipher {
    aead: Box<dyn Aead>,
}

impl fmt::Debug for MetadataCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetadataCipher([REDACTED])")
    }
}

impl MetadataCipher {
    pub(crate) fn new(aead: Box<dyn Aead>) -> Self {
        Self { aead }
    }

    /// Seals `plaintext` as the metadata field `field`.
    pub fn seal(&self, field: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() > METADATA_MAX_LEN {
            return Err(Error::InvalidArgument("metadata field longer than 64 KiB"));
        }
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| Error::Rng)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(METADATA_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .aead
            .seal_in_place(&nonce, field.as_bytes(), &mut out[1 + NONCE_LEN..])?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a sealed metadata field; any tampering, a wrong field name or a
    /// wrong key gives [`Error::Authentication`].
    pub fn open(&self, field: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != METADATA_VERSION {
            return Err(Error::Authentication);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&sealed[sealed.len() - TAG_LEN..]);
        let mut buf = sealed[1 + NONCE_LEN..sealed.len() - TAG_LEN].to_vec();
        self.aead
            .open_in_place(&nonce, field.as_bytes(), &mut buf, &tag)?;
        Ok(buf)
    }
}
