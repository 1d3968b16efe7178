//! Key material types.
//!
//! Every key lives on the heap in a box that is zeroized when dropped, so
//! moving a key moves a pointer and leaves no copy of the bytes behind. No key
//! type implements `Clone`, `Display` or a `Debug` that prints bytes, and the
//! bytes are reachable only inside this crate. Each level of the hierarchy has
//! its own type, so a data key cannot be passed where an applicant key is
//! expected.

use std::fmt;

use zeroize::Zeroize;

use crate::error::{Error, Result};

/// Length in bytes of every symmetric key in the vault (AES-256).
pub const KEY_LEN: usize = 32;

/// 32 secret bytes on the heap, zeroized on drop, printed as `[REDACTED]`:
/// the untyped key a [`crate::keys::KeyProvider`] wraps and unwraps. The
/// typed keys below are built on it.
pub struct Secret32(Box<[u8; KEY_LEN]>);

impl Secret32 {
    /// Fresh random bytes from the operating system's CSPRNG.
    pub fn random() -> Result<Self> {
        let mut s = Self::zero();
        getrandom::fill(&mut s.0[..]).map_err(|_| Error::Rng)?;
        Ok(s)
    }

    pub(crate) fn zero() -> Self {
        Self(Box::new([0u8; KEY_LEN]))
    }

    /// Exactly 32 caller-held bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != KEY_LEN {
            return Err(Error::InvalidArgument("a key must be exactly 32 bytes"));
        }
        let mut s = Self::zero();
        s.0.copy_from_slice(bytes);
        Ok(s)
    }

    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The bytes, for a key provider that hands them to an external KMS.
    /// Do not copy them anywhere else.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub(crate) fn expose_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }
}

impl Drop for Secret32 {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(pub(crate) Secret32);

        impl $name {
            /// A fresh random key from the operating system's CSPRNG.
            pub fn generate() -> Result<Self> {
                Secret32::random().map(Self)
            }

            /// A key from exactly 32 caller-held bytes. The caller should
            /// zeroize its own copy.
            pub fn from_slice(bytes: &[u8]) -> Result<Self> {
                Secret32::from_slice(bytes).map(Self)
            }

            #[cfg_attr(not(feature = "vault"), allow(dead_code))]
            pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
                self.0.expose()
            }

        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }
    };
}

key_type!(
    /// A root key: held by a [`crate::keys::KeyProvider`], wraps applicant
    /// keys, never stored in the metadata database or the blob store.
    RootKey
);
key_type!(
    /// One applicant's key (per tenant + applicant, versioned): wraps the
    /// data keys of that applicant's documents. Destroying it crypto-shreds
    /// every document of the applicant.
    ApplicantKey
);
key_type!(
    /// One document's data key: random, never reused for another document;
    /// the segment key, key commitment and metadata key are derived from it.
    DataKey
);
key_type!(
    /// The vault's own key, wrapped under the root key like an applicant
    /// key: the audit log's MAC key and the erasure ledger's key are derived
    /// from it. Kept wrapped in the metadata database, so it survives root
    /// key rotation (which rewraps it) and backups never hold it in clear.
    SystemKey
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let bytes = [0xA5u8; KEY_LEN];
        let k = DataKey::from_slice(&bytes).unwrap();
        let shown = format!(
            "{k:?} {:?} {:?}",
            RootKey::generate().unwrap(),
            ApplicantKey::generate().unwrap()
        );
        assert_eq!(shown.matches("[REDACTED]").count(), 3);
        assert!(!shown.to_lowercase().contains("a5"));
        assert!(!shown.contains("165"));
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert!(matches!(
            DataKey::from_slice(&[0u8; 31]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            DataKey::from_slice(&[0u8; 33]),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn generated_keys_differ() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.expose(), &[0u8; KEY_LEN]);
    }
}
