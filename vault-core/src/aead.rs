//! AES-256-GCM behind one small internal trait, with two backends.
//!
//! - [`Backend::AwsLc`] (feature `aws-lc`, the default): AWS-LC's assembly,
//!   with VAES/VPCLMULQDQ paths where the CPU has them. Several times faster
//!   than the pure-Rust backend on the machines this project runs on.
//! - [`Backend::RustCrypto`] (feature `rustcrypto`): RustCrypto's `aes-gcm`,
//!   pure Rust, builds without a C compiler, and serves as the differential
//!   oracle: both backends must produce identical bytes (tested on every
//!   Wycheproof vector and on random inputs).
//!
//! The trait is deliberately tiny: seal in place returning a detached tag,
//! and open in place against a detached tag. On a failed open the buffer is
//! zeroed, so no unauthenticated plaintext can leak from it.

use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::secret::KEY_LEN;

/// AES-GCM nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Which AES-256-GCM implementation seals and opens segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// AWS-LC (via `aws-lc-rs`): assembly, the default.
    #[cfg(feature = "aws-lc")]
    AwsLc,
    /// RustCrypto `aes-gcm`: pure Rust.
    #[cfg(feature = "rustcrypto")]
    RustCrypto,
}

impl Default for Backend {
    fn default() -> Self {
        #[cfg(feature = "aws-lc")]
        return Backend::AwsLc;
        #[cfg(not(feature = "aws-lc"))]
        return Backend::RustCrypto;
    }
}

impl Backend {
    /// Every backend compiled into this build.
    pub fn all() -> &'static [Backend] {
        &[
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc,
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto,
        ]
    }

    /// A short, stable name (`aws-lc` or `rustcrypto`).
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => "aws-lc",
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => "rustcrypto",
        }
    }

    /// An AES-256-GCM instance keyed with `key`.
    pub(crate) fn cipher(self, key: &[u8; KEY_LEN]) -> Result<Box<dyn Aead>> {
        match self {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => Ok(Box::new(aws::AwsLcGcm::new(key)?)),
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => Ok(Box::new(rc::RustCryptoGcm::new(key))),
        }
    }
}

/// AES-256-GCM with 96-bit nonces and 128-bit tags.
pub(crate) trait Aead: Send + Sync {
    /// Encrypts `in_out` in place and returns the tag.
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]>;

    /// Verifies `tag` and decrypts `in_out` in place. On failure `in_out` is
    /// zeroed and [`Error::Authentication`] is returned.
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<()>;

    /// Encrypts `input` into `out`, which must be exactly `input.len() +
    /// TAG_LEN` bytes: ciphertext then tag. Backends with an out-of-place
    /// primitive avoid the copy.
    fn seal_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let (ct, tag_out) = split_for_tag(out, input.len())?;
        ct.copy_from_slice(input);
        let tag = self.seal_in_place(nonce, aad, ct)?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Verifies and decrypts `ct_and_tag` into `out`, which must be exactly
    /// `ct_and_tag.len() - TAG_LEN` bytes. On failure `out` is zeroed.
    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ct_and_tag: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let (ct, tag) = split_tag(ct_and_tag, out.len())?;
        out.copy_from_slice(ct);
        self.open_in_place(nonce, aad, out, tag)
    }
}

/// Splits an output buffer into `n` ciphertext bytes and a tag slot.
fn split_for_tag(out: &mut [u8], n: usize) -> Result<(&mut [u8], &mut [u8])> {
    if out.len() != n + TAG_LEN {
        return Err(Error::InvalidArgument(
            "AEAD output buffer has the wrong length",
        ));
    }
    Ok(out.split_at_mut(n))
}

/// Splits `ct_and_tag` into `n` ciphertext bytes and the tag.
fn split_tag(ct_and_tag: &[u8], n: usize) -> Result<(&[u8], &[u8; TAG_LEN])> {
    if ct_and_tag.len() != n + TAG_LEN {
        return Err(Error::InvalidArgument(
            "AEAD output buffer has the wrong length",
        ));
    }
    let (ct, tag) = ct_and_tag.split_at(n);
    let tag = tag.try_into().map_err(|_| Error::Authentication)?;
    Ok((ct, tag))
}

#[cfg(feature = "aws-lc")]
mod aws {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    use super::*;

    pub(super) struct AwsLcGcm(LessSafeKey);

    impl AwsLcGcm {
        pub(super) fn new(key: &[u8; KEY_LEN]) -> Result<Self> {
            let unbound = UnboundKey::new(&AES_256_GCM, key)
                .map_err(|_| Error::InvalidArgument("AES-256-GCM key rejected"))?;
            Ok(Self(LessSafeKey::new(unbound)))
        }
    }

    impl Aead for AwsLcGcm {
        fn seal_in_place(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            in_out: &mut [u8],
        ) -> Result<[u8; TAG_LEN]> {
            let tag = self
                .0
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    in_out,
                )
                .map_err(|_| Error::InvalidArgument("AES-GCM input too long"))?;
            let mut out = [0u8; TAG_LEN];
            out.copy_from_slice(tag.as_ref());
            Ok(out)
        }

        fn open_in_place(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            in_out: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> Result<()> {
            let opened = self.0.open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                tag,
                in_out,
            );
            if opened.is_err() {
                in_out.zeroize();
                return Err(Error::Authentication);
            }
            Ok(())
        }

        fn seal_to(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            input: &[u8],
            out: &mut [u8],
        ) -> Result<()> {
            let (ct, tag) = split_for_tag(out, input.len())?;
            self.0
                .seal_out_of_place_scatter(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    input,
                    ct,
                    &[],
                    tag,
                )
                .map_err(|_| Error::InvalidArgument("AES-GCM input too long"))
        }

        fn open_to(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            ct_and_tag: &[u8],
            out: &mut [u8],
        ) -> Result<()> {
            let (ct, tag) = split_tag(ct_and_tag, out.len())?;
            let opened = self.0.open_separate_gather(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                ct,
                tag,
                out,
            );
            if opened.is_err() {
                out.zeroize();
                return Err(Error::Authentication);
            }
            Ok(())
        }
    }
}

#[cfg(feature = "rustcrypto")]
mod rc {
    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::{Aes256Gcm, KeyInit};

    use super::*;

    pub(super) struct RustCryptoGcm(Aes256Gcm);

    impl RustCryptoGcm {
        pub(super) fn new(key: &[u8; KEY_LEN]) -> Self {
            Self(Aes256Gcm::new(key.into()))
        }
    }

    impl Aead for RustCryptoGcm {
        fn seal_in_place(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            in_out: &mut [u8],
        ) -> Result<[u8; TAG_LEN]> {
            let tag = self
                .0
                .encrypt_in_place_detached(nonce.into(), aad, in_out)
                .map_err(|_| Error::InvalidArgument("AES-GCM input too long"))?;
            Ok(tag.into())
        }

        fn open_in_place(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            in_out: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> Result<()> {
            if self
                .0
                .decrypt_in_place_detached(nonce.into(), aad, in_out, tag.into())
                .is_err()
            {
                in_out.zeroize();
                return Err(Error::Authentication);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
