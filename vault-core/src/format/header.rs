//! The stream header: parse and serialise.

use crate::error::{Error, FormatError, Result};

/// The first four bytes of every stream.
pub const MAGIC: [u8; 4] = *b"DVLT";
/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Algorithm 1: AES-256-GCM segments, HKDF-SHA256 derivation and commitment.
pub const ALGORITHM_AES256GCM_HKDF_SHA256: u8 = 1;
/// Length of the random per-stream salt.
pub const SALT_LEN: usize = 32;
/// Where the salt lies in the header (after magic, version, algorithm and
/// segment size).
pub(crate) const SALT_AT: std::ops::Range<usize> = 10..10 + SALT_LEN;
/// Length of the key commitment.
pub const COMMITMENT_LEN: usize = 32;
/// Length of the header: magic(4) version(1) algorithm(1) segment size(4)
/// salt(32) commitment(32).
pub const HEADER_LEN: usize = 4 + 1 + 1 + 4 + SALT_LEN + COMMITMENT_LEN;
/// Length of the header prefix that key derivation binds (all but the
/// commitment).
pub(crate) const HEADER_PREFIX_LEN: usize = HEADER_LEN - COMMITMENT_LEN;
/// Smallest allowed plaintext segment size.
pub const MIN_SEGMENT_SIZE: u32 = 256;
/// Largest allowed plaintext segment size (16 MiB).
pub const MAX_SEGMENT_SIZE: u32 = 16 * 1024 * 1024;
/// The default plaintext segment size (64 KiB).
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;

/// A plaintext segment size within [`MIN_SEGMENT_SIZE`, `MAX_SEGMENT_SIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentSize(u32);

impl SegmentSize {
    /// The default, 64 KiB.
    pub const DEFAULT: SegmentSize = SegmentSize(DEFAULT_SEGMENT_SIZE);

    /// Checks the range.
    pub fn new(bytes: u32) -> Result<Self> {
        Self::checked(bytes).map_err(Error::from)
    }

    fn checked(bytes: u32) -> Result<Self, FormatError> {
        if (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&bytes) {
            Ok(Self(bytes))
        } else {
            Err(FormatError::SegmentSizeOutOfRange(bytes))
        }
    }

    /// The size in bytes.
    pub fn get(self) -> u32 {
        self.0
    }

    pub(crate) fn usize(self) -> usize {
        self.0 as usize
    }
}

impl Default for SegmentSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A parsed stream header. Parsing checks structure only; authenticity is
/// established by the key commitment (see [`crate::format::Opener`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    segment_size: SegmentSize,
    salt: [u8; SALT_LEN],
    commitment: [u8; COMMITMENT_LEN],
}

impl Header {
    pub(crate) fn new(
        segment_size: SegmentSize,
        salt: [u8; SALT_LEN],
        commitment: [u8; COMMITMENT_LEN],
    ) -> Self {
        Self {
            segment_size,
            salt,
            commitment,
        }
    }

    /// Parses the first [`HEADER_LEN`] bytes of `bytes`; later bytes are
    /// ignored. Checks, in order: length, magic, version, algorithm, segment
    /// size range.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let h = bytes
            .get(..HEADER_LEN)
            .ok_or(FormatError::HeaderTruncated)?;
        if h[0..4] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        if h[4] != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion(h[4]));
        }
        if h[5] != ALGORITHM_AES256GCM_HKDF_SHA256 {
            return Err(FormatError::UnsupportedAlgorithm(h[5]));
        }
        let segment_size = SegmentSize::checked(u32::from_be_bytes([h[6], h[7], h[8], h[9]]))?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&h[SALT_AT]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        commitment.copy_from_slice(&h[HEADER_PREFIX_LEN..HEADER_LEN]);
        Ok(Self {
            segment_size,
            salt,
            commitment,
        })
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..HEADER_PREFIX_LEN].copy_from_slice(&Self::prefix(self.segment_size, &self.salt));
        out[HEADER_PREFIX_LEN..].copy_from_slice(&self.commitment);
        out
    }

    /// The bytes before the commitment, which key derivation binds.
    pub(crate) fn prefix(
        segment_size: SegmentSize,
        salt: &[u8; SALT_LEN],
    ) -> [u8; HEADER_PREFIX_LEN] {
        let mut p = [0u8; HEADER_PREFIX_LEN];
        p[0..4].copy_from_slice(&MAGIC);
        p[4] = FORMAT_VERSION;
        p[5] = ALGORITHM_AES256GCM_HKDF_SHA256;
        p[6..10].copy_from_slice(&segment_size.get().to_be_bytes());
        p[SALT_AT].copy_from_slice(salt);
        p
    }

    /// The plaintext segment size.
    pub fn segment_size(&self) -> SegmentSize {
        self.segment_size
    }

    pub(crate) fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    pub(crate) fn commitment(&self) -> &[u8; COMMITMENT_LEN] {
        &self.commitment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; HEADER_LEN] {
        Header::new(SegmentSize::DEFAULT, [7; SALT_LEN], [9; COMMITMENT_LEN]).to_bytes()
    }

    #[test]
    fn round_trip_and_layout() {
        let b = sample();
        assert_eq!(HEADER_LEN, 74);
        assert_eq!(&b[..10], b"DVLT\x01\x01\x00\x01\x00\x00");
        let h = Header::parse(&b).unwrap();
        assert_eq!(h.to_bytes(), b);
    }

    #[test]
    fn typed_errors_for_each_structural_check() {
        let good = sample();
        for len in 0..HEADER_LEN {
            assert_eq!(
                Header::parse(&good[..len]),
                Err(FormatError::HeaderTruncated)
            );
        }
        let mut b = good;
        b[0] ^= 1;
        assert_eq!(Header::parse(&b), Err(FormatError::BadMagic));
        let mut b = good;
        b[4] = 2;
        assert_eq!(Header::parse(&b), Err(FormatError::UnsupportedVersion(2)));
        let mut b = good;
        b[5] = 0;
        assert_eq!(Header::parse(&b), Err(FormatError::UnsupportedAlgorithm(0)));
        for bad in [0u32, 255, MAX_SEGMENT_SIZE + 1, u32::MAX] {
            let mut b = good;
            b[6..10].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(
                Header::parse(&b),
                Err(FormatError::SegmentSizeOutOfRange(bad))
            );
        }
        for ok in [MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE, 1000] {
            let mut b = good;
            b[6..10].copy_from_slice(&ok.to_be_bytes());
            assert!(Header::parse(&b).is_ok());
        }
    }
}
