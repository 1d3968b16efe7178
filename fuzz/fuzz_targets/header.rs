//! Arbitrary bytes through the header parser and the layout computation:
//! both must return a value or a typed error, never panic, and a parsed
//! header must serialise back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_core::format::{HEADER_LEN, Header, Layout};

fuzz_target!(|data: &[u8]| {
    match Header::parse(data) {
        Ok(h) => {
            assert_eq!(&h.to_bytes()[..], &data[..HEADER_LEN]);
            if data.len() >= 8 {
                let total = u64::from_le_bytes(data[data.len() - 8..].try_into().unwrap());
                if let Ok(layout) = Layout::from_ciphertext_len(h.segment_size(), total) {
                    assert_eq!(layout.ciphertext_len(), total);
                    let n = layout.plaintext_len();
                    let _ = layout.plan(n / 3..n);
                    let _ = layout.plan(0..n.saturating_add(1));
                }
            }
        }
        Err(_) => {}
    }
});
