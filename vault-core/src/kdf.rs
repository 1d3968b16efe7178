//! Every HKDF label of the vault, and the one way keys are derived.
//!
//! Labels are ASCII, contain no NUL byte, and are followed by a NUL in the
//! HKDF `info`, so no label is a prefix of another's input. Changing a label
//! changes the format: it requires a new format version.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::secret::{KEY_LEN, Secret32};

/// Segment key of a stream (`docs/FORMAT.md`).
pub(crate) const SEGMENT_KEY: &[u8] = b"vault/v1/segment-key";
/// Key commitment of a stream, stored in its header.
pub(crate) const KEY_COMMITMENT: &[u8] = b"vault/v1/key-commitment";
/// Key that encrypts a document's own metadata (its file name).
pub(crate) const METADATA_KEY: &[u8] = b"vault/v1/metadata-key";
/// Key-encryption key derived from a root key, wrapping applicant keys.
pub(crate) const KEK_APPLICANT: &[u8] = b"vault/v1/kek/applicant-key";
/// Key-encryption key derived from an applicant key, wrapping data keys.
pub(crate) const KEK_DATA: &[u8] = b"vault/v1/kek/data-key";
/// Associated-data prefix when wrapping an applicant key.
pub(crate) const WRAP_AD_APPLICANT: &[u8] = b"vault/v1/wrap/applicant-key";
/// Associated-data prefix when wrapping a data key.
pub(crate) const WRAP_AD_DATA: &[u8] = b"vault/v1/wrap/data-key";

/// HKDF-SHA256 with a fixed salt and input key, expanding 32-byte keys
/// under `label || 0x00 || context...`.
pub(crate) struct Kdf(Hkdf<Sha256>);

impl Kdf {
    /// HKDF-Extract(salt, ikm).
    pub(crate) fn new(salt: &[u8], ikm: &[u8; KEY_LEN]) -> Self {
        Self(Hkdf::<Sha256>::new(Some(salt), ikm))
    }

    /// HKDF-Expand(prk, label || 0x00 || parts..., 32).
    pub(crate) fn expand(&self, label: &[u8], parts: &[&[u8]]) -> Secret32 {
        let mut info: Vec<&[u8]> = Vec::with_capacity(parts.len() + 2);
        info.push(label);
        info.push(&[0u8]);
        info.extend_from_slice(parts);
        let mut out = Secret32::zero();
        #[allow(clippy::expect_used)]
        self.0
            .expand_multi_info(&info, out.expose_mut())
            .expect("HKDF-SHA256 can always expand 32 bytes (limit is 255 * 32)");
        out
    }
}

/// Length-prefixes `bytes` with a big-endian u16; callers bound the length.
pub(crate) fn push_lp(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(bytes.len() <= u16::MAX as usize);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_nul_free() {
        let labels = [
            SEGMENT_KEY,
            KEY_COMMITMENT,
            METADATA_KEY,
            KEK_APPLICANT,
            KEK_DATA,
            WRAP_AD_APPLICANT,
            WRAP_AD_DATA,
        ];
        for (i, a) in labels.iter().enumerate() {
            assert!(!a.contains(&0));
            for b in &labels[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn different_labels_give_different_keys() {
        let kdf = Kdf::new(b"salt", &[1u8; 32]);
        let a = kdf.expand(SEGMENT_KEY, &[b"ctx"]);
        let b = kdf.expand(KEY_COMMITMENT, &[b"ctx"]);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.expose(), &[0u8; 32]);
    }
}
