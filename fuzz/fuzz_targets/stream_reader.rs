//! The stream readers on untrusted bytes.
//!
//! Mode 0: the input is a whole stream (wrong key for it, almost always):
//! every reader must fail with a typed error, never panic.
//! Mode 1: the input describes a plaintext and edits (byte flips, a cut, an
//! append) applied to a valid stream of it: every reader must return exactly
//! the plaintext if the edits changed nothing, and fail otherwise.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use vault_core::Error;
use vault_core::aead::Backend;
use vault_core::format::{
    OpeningReader, SealParams, SeekableOpener, SegmentSize, StreamContext, open_to_vec, seal_to_vec,
};
use vault_core::secret::DataKey;

fn read_all(stream: &[u8], key: &DataKey, ctx: &StreamContext) -> Vec<Result<Vec<u8>, Error>> {
    let b = Backend::default();
    let whole = open_to_vec(key, ctx, stream, b);
    let streamed = OpeningReader::new(stream, key, ctx, b).and_then(|mut r| {
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(Error::from)?;
        Ok(out)
    });
    let seek = SeekableOpener::new(stream, key, ctx, b).and_then(|s| {
        let n = s.plaintext_len();
        let _ = s.read_range(n / 2..n);
        s.read_range(0..n)
    });
    vec![whole, streamed, seek]
}

fuzz_target!(|data: &[u8]| {
    let key = DataKey::from_slice(&[0x42; 32]).unwrap();
    let ctx = StreamContext::new(b"t", b"a", b"d", b"c").unwrap();
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        for r in read_all(rest, &key, &ctx) {
            assert!(r.is_err(), "a forged stream opened");
        }
        return;
    }
    // Mode 1: rest = [len_lo, len_hi, seg_sel, edits...], edits in 3-byte
    // groups (op, pos_lo, pos_hi).
    if rest.len() < 3 {
        return;
    }
    let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])) % 2048;
    let seg = [256u32, 300, 1024][usize::from(rest[2]) % 3];
    let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let params = SealParams { segment_size: SegmentSize::new(seg).unwrap(), backend: Backend::default() };
    let original = seal_to_vec(&key, &ctx, params, &plaintext).unwrap();
    let mut stream = original.clone();
    for e in rest[3..].chunks_exact(3) {
        let pos = usize::from(u16::from_le_bytes([e[1], e[2]]));
        match e[0] % 4 {
            0 | 1 => {
                if !stream.is_empty() {
                    let i = pos % stream.len();
                    stream[i] ^= e[0] | 1;
                }
            }
            2 => stream.truncate(pos % (stream.len() + 1)),
            _ => stream.push(e[0]),
        }
    }
    let unchanged = stream == original;
    for r in read_all(&stream, &key, &ctx) {
        match r {
            Ok(p) => {
                assert!(unchanged, "an edited stream opened");
                assert_eq!(p, plaintext);
            }
            Err(e) => {
                assert!(!unchanged, "an intact stream failed: {e}");
                assert!(matches!(e, Error::Authentication | Error::Format(_)), "{e:?}");
            }
        }
    }
});
