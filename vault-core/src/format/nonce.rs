//! Segment nonces.

use crate::aead::NONCE_LEN;

/// The nonce of segment `index`: seven zero bytes, the index as a big-endian
/// u32, then 0x01 if this is the stream's last segment and 0x00 otherwise.
///
/// Every segment key is fresh per stream (derived with a random 256-bit
/// salt), so a nonce never repeats under a key: indices are distinct within a
/// stream, and the index type caps a stream at 2^32 segments. The last flag
/// makes a stream cut at a segment boundary fail to authenticate (its new
/// final segment was sealed as "not last"), and any segment moved to another
/// position fails because its index changed.
pub(crate) fn segment_nonce(index: u32, last: bool) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_the_nonce() {
        assert_eq!(segment_nonce(0, false), [0; 12]);
        assert_eq!(segment_nonce(0, true), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            segment_nonce(0x0102_0304, false),
            [0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0]
        );
        assert_eq!(
            segment_nonce(u32::MAX, true)[7..],
            [0xff, 0xff, 0xff, 0xff, 1]
        );
    }

    #[test]
    fn nonces_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for i in [0u32, 1, 2, 255, 256, 65535, 65536, u32::MAX] {
            for last in [false, true] {
                assert!(seen.insert(segment_nonce(i, last)));
            }
        }
    }
}
