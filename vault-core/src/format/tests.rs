//! Tests of the stream format: vectors, round trips, tampering, ranges.

use std::cell::Cell;
use std::io::{Read, Write};

use proptest::prelude::*;

use super::*;
use crate::aead::{Backend, TAG_LEN};
use crate::error::{Error, FormatError};
use crate::secret::DataKey;

const S: u32 = 256;

fn key() -> DataKey {
    DataKey::from_slice(&[0x11; 32]).unwrap()
}

fn ctx() -> StreamContext {
    StreamContext::new(b"tenant-a", b"applicant-1", b"document-1", b"pay_stub").unwrap()
}

fn params(segment: u32, backend: Backend) -> SealParams {
    SealParams {
        segment_size: SegmentSize::new(segment).unwrap(),
        backend,
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn seal_fixed(pt: &[u8], segment: u32, backend: Backend, salt: [u8; SALT_LEN]) -> Vec<u8> {
    let sealer = Sealer::with_salt(&key(), &ctx(), params(segment, backend), salt).unwrap();
    seal::seal_all(sealer, pt).unwrap()
}

fn read_all<R: Read>(r: &mut R) -> (Vec<u8>, Option<Error>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 97];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(Error::from(e))),
        }
    }
}

/// Opens `stream` through every reading path (whole buffer, streaming
/// reader, random access over the full range) and returns each outcome.
/// For the streaming reader, also checks that whatever plaintext it released
/// before failing is a prefix of `expected` made of whole segments.
fn open_every_way(
    stream: &[u8],
    key: &DataKey,
    ctx: &StreamContext,
    backend: Backend,
    expected: &[u8],
) -> Vec<crate::Result<Vec<u8>>> {
    let whole = open_to_vec(key, ctx, stream, backend);
    let streamed = match OpeningReader::new(stream, key, ctx, backend) {
        Err(e) => Err(e),
        Ok(mut r) => match read_all(&mut r) {
            (out, None) => Ok(out),
            (released, Some(e)) => {
                assert!(
                    released.len() as u64 % u64::from(S) == 0,
                    "released a partial segment ({} bytes) before failing",
                    released.len()
                );
                assert_eq!(&expected[..released.len()], &released[..]);
                Err(e)
            }
        },
    };
    let seekable = SeekableOpener::new(stream, key, ctx, backend)
        .and_then(|s| s.read_range(0..s.plaintext_len()));
    // The streaming reader again, with a caller buffer large enough to be
    // decrypted into directly: after a failure it must hold nothing but its
    // fill byte and zeroes.
    let streamed_direct = match OpeningReader::new(stream, key, ctx, backend) {
        Err(e) => Err(e),
        Ok(mut r) => {
            let mut out = Vec::new();
            let mut buf = vec![0xAAu8; 4 * S as usize];
            loop {
                buf.fill(0xAA);
                match r.read(&mut buf) {
                    Ok(0) => break Ok(out),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        let leaked = buf.iter().filter(|&&b| b != 0xAA && b != 0).count();
                        assert_eq!(
                            leaked, 0,
                            "plaintext of a failed segment left in the caller's buffer"
                        );
                        break Err(Error::from(e));
                    }
                }
            }
        }
    };
    vec![whole, streamed, seekable, streamed_direct]
}

fn assert_auth_failure(stream: &[u8], what: &str) {
    for &backend in Backend::all() {
        for r in open_every_way(stream, &key(), &ctx(), backend, &pattern(3 * S as usize)) {
            assert!(matches!(r, Err(Error::Authentication)), "{what}: {r:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Test vectors (vault-core/tests/vectors/format_v1.json)

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct Vector {
    name: String,
    key: String,
    salt: String,
    segment_size: u32,
    tenant: String,
    applicant: String,
    document: String,
    category: String,
    plaintext: String,
    /// Intermediate values, for implementers: HKDF PRK and the three
    /// derived keys.
    prk: String,
    segment_key: String,
    commitment: String,
    metadata_key: String,
    stream: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VectorFile {
    description: String,
    vectors: Vec<Vector>,
}

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/format_v1.json");

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn generate_vectors() -> VectorFile {
    use crate::kdf::{KEY_COMMITMENT, METADATA_KEY, SEGMENT_KEY};
    let salt: [u8; SALT_LEN] = core::array::from_fn(|i| (0xA0 + i) as u8);
    let text_ctx: [&[u8]; 4] = [b"tenant-a", b"applicant-1", b"document-1", b"pay_stub"];
    // The vault's own encoding: raw 16-byte UUIDs for tenant and document.
    let vault_ctx: [&[u8]; 4] = [
        &[
            0x4f, 0x1c, 0x2a, 0x90, 0x6b, 0x3e, 0x4d, 0x11, 0x8a, 0x07, 0x5e, 0x21, 0xc3, 0x9b,
            0x00, 0x7d,
        ],
        b"APP-000123",
        &[
            0x00, 0xff, 0x10, 0x20, 0x30, 0x40, 0x4a, 0x50, 0x80, 0x60, 0x70, 0x80, 0x90, 0xa0,
            0xb0, 0xc0,
        ],
        b"id_document",
    ];
    let empty_ctx: [&[u8]; 4] = [b"", b"", b"", b""];
    type Case<'a> = (&'a str, [u8; 32], u32, usize, [&'a [u8]; 4]);
    let cases: [Case<'_>; 9] = [
        ("empty", [0x11; 32], S, 0, text_ctx),
        ("one-byte", [0x11; 32], S, 1, text_ctx),
        ("one-full-segment", [0x11; 32], S, S as usize, text_ctx),
        ("segment-plus-one", [0x11; 32], S, S as usize + 1, text_ctx),
        (
            "three-segments",
            [0x11; 32],
            S,
            3 * S as usize - 10,
            text_ctx,
        ),
        (
            "three-full-segments",
            [0x11; 32],
            S,
            3 * S as usize,
            text_ctx,
        ),
        (
            "default-segment-size-short",
            [0x11; 32],
            DEFAULT_SEGMENT_SIZE,
            33,
            text_ctx,
        ),
        (
            "binary-uuid-context",
            core::array::from_fn(|i| (i * 7) as u8),
            300,
            700,
            vault_ctx,
        ),
        ("empty-context-fields", [0xFE; 32], S, 10, empty_ctx),
    ];
    let vectors = cases
        .iter()
        .map(|(name, key_bytes, seg, len, c)| {
            let pt = pattern(*len);
            let key = DataKey::from_slice(key_bytes).unwrap();
            let ctx = StreamContext::new(c[0], c[1], c[2], c[3]).unwrap();
            let seg_size = SegmentSize::new(*seg).unwrap();
            let prefix = Header::prefix(seg_size, &salt);
            let kdf = derive::StreamKdf::new(&key, &salt, &prefix, &ctx);
            let (prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&salt), key_bytes);
            let sealer =
                Sealer::with_salt(&key, &ctx, params(*seg, Backend::default()), salt).unwrap();
            Vector {
                name: (*name).into(),
                key: hex::encode(key_bytes),
                salt: hex::encode(salt),
                segment_size: *seg,
                tenant: hex::encode(c[0]),
                applicant: hex::encode(c[1]),
                document: hex::encode(c[2]),
                category: hex::encode(c[3]),
                plaintext: hex::encode(&pt),
                prk: hex::encode(prk),
                segment_key: hex::encode(kdf.derived_for_vectors(SEGMENT_KEY)),
                commitment: hex::encode(kdf.derived_for_vectors(KEY_COMMITMENT)),
                metadata_key: hex::encode(kdf.derived_for_vectors(METADATA_KEY)),
                stream: hex::encode(seal::seal_all(sealer, &pt).unwrap()),
            }
        })
        .collect();
    VectorFile {
        description: "Document vault stream format v1 test vectors (docs/FORMAT.md). Every field \
                      is hex, the four context fields included. Plaintext byte i is \
                      (31*i + 7) mod 251. prk, segment_key, commitment and metadata_key are \
                      intermediate values of FORMAT.md section 3. Regenerate with \
                      VAULT_REGENERATE_VECTORS=1 cargo test -p vault-core format::tests::vectors"
            .into(),
        vectors,
    }
}

#[test]
fn vectors_match_byte_for_byte() {
    let generated = generate_vectors();
    if std::env::var_os("VAULT_REGENERATE_VECTORS").is_some() {
        let json = serde_json::to_string_pretty(&generated).unwrap();
        std::fs::write(VECTORS_PATH, json + "\n").unwrap();
    }
    let file: VectorFile =
        serde_json::from_str(&std::fs::read_to_string(VECTORS_PATH).unwrap()).unwrap();
    assert_eq!(file.vectors.len(), 9);
    for v in &file.vectors {
        let key = DataKey::from_slice(&h(&v.key)).unwrap();
        let ctx = StreamContext::new(
            &h(&v.tenant),
            &h(&v.applicant),
            &h(&v.document),
            &h(&v.category),
        )
        .unwrap();
        let salt: [u8; SALT_LEN] = h(&v.salt).try_into().unwrap();
        let pt = h(&v.plaintext);
        let stream = h(&v.stream);
        // The header's commitment field is the published commitment.
        assert_eq!(
            hex::encode(&stream[HEADER_LEN - 32..HEADER_LEN]),
            v.commitment,
            "{}",
            v.name
        );
        for &backend in Backend::all() {
            // Sealing reproduces the stored bytes on every backend...
            let sealer =
                Sealer::with_salt(&key, &ctx, params(v.segment_size, backend), salt).unwrap();
            let sealed = seal::seal_all(sealer, &pt).unwrap();
            assert_eq!(hex::encode(&sealed), v.stream, "{} on {backend:?}", v.name);
            // ...and opening the stored bytes gives the plaintext back.
            assert_eq!(
                open_to_vec(&key, &ctx, &stream, backend).unwrap(),
                pt,
                "{}",
                v.name
            );
        }
    }
    // The committed file is exactly what the code generates.
    assert_eq!(file.vectors, generated.vectors);
}

// ---------------------------------------------------------------------------
// Edge cases of segmentation

#[test]
fn segment_counts_at_the_edges() {
    for (len, segments) in [
        (0usize, 1u64),
        (1, 1),
        (255, 1),
        (256, 1),
        (257, 2),
        (512, 2),
        (513, 3),
    ] {
        let pt = pattern(len);
        let ct = seal_to_vec(&key(), &ctx(), params(S, Backend::default()), &pt).unwrap();
        let layout =
            Layout::from_ciphertext_len(SegmentSize::new(S).unwrap(), ct.len() as u64).unwrap();
        assert_eq!(layout.segments(), segments, "len {len}");
        assert_eq!(layout.plaintext_len(), len as u64);
        assert_eq!(
            ct.len() as u64,
            HEADER_LEN as u64 + len as u64 + segments * TAG_LEN as u64
        );
        assert_eq!(
            Layout::for_plaintext_len(SegmentSize::new(S).unwrap(), len as u64).unwrap(),
            layout
        );
        assert_eq!(
            open_to_vec(&key(), &ctx(), &ct, Backend::default()).unwrap(),
            pt
        );
    }
}

#[test]
fn empty_stream_is_one_empty_final_segment() {
    let ct = seal_to_vec(&key(), &ctx(), params(S, Backend::default()), &[]).unwrap();
    assert_eq!(ct.len(), HEADER_LEN + TAG_LEN);
    let mut r = OpeningReader::new(&ct[..], &key(), &ctx(), Backend::default()).unwrap();
    let (out, err) = read_all(&mut r);
    assert!(out.is_empty() && err.is_none());
    // Header alone (the final segment cut off) is truncation, not an empty file.
    assert_auth_failure(&ct[..HEADER_LEN], "header only");
    // The empty final segment's tag is checked on every path.
    for i in HEADER_LEN..ct.len() {
        let mut bad = ct.clone();
        bad[i] ^= 1;
        assert_auth_failure(&bad, "flipped tag of the empty segment");
    }
    let mut random_tag = ct[..HEADER_LEN].to_vec();
    random_tag.extend_from_slice(&[0x5a; TAG_LEN]);
    assert_auth_failure(&random_tag, "forged empty segment");
}

// ---------------------------------------------------------------------------
// Tamper suite

fn three_segment_stream() -> Vec<u8> {
    seal_to_vec(
        &key(),
        &ctx(),
        params(S, Backend::default()),
        &pattern(3 * S as usize),
    )
    .unwrap()
}

fn segments_of(ct: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let full = S as usize + TAG_LEN;
    (
        ct[..HEADER_LEN].to_vec(),
        ct[HEADER_LEN..].chunks(full).map(<[u8]>::to_vec).collect(),
    )
}

#[test]
fn flipping_any_byte_fails() {
    let ct = three_segment_stream();
    for i in 0..ct.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = ct.clone();
            bad[i] ^= mask;
            for &backend in Backend::all() {
                for r in open_every_way(&bad, &key(), &ctx(), backend, &pattern(3 * S as usize)) {
                    match r {
                        Err(Error::Authentication) => {}
                        // Public structural fields (magic, version, algorithm,
                        // segment size) may fail their parse check first.
                        Err(Error::Format(_)) if i < 10 => {}
                        other => panic!("byte {i} ^ {mask:#x}: {other:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn truncation_anywhere_fails() {
    let ct = three_segment_stream();
    for len in 0..ct.len() {
        for &backend in Backend::all() {
            for r in open_every_way(
                &ct[..len],
                &key(),
                &ctx(),
                backend,
                &pattern(3 * S as usize),
            ) {
                if len < HEADER_LEN {
                    assert!(
                        matches!(r, Err(Error::Format(FormatError::HeaderTruncated))),
                        "len {len}: {r:?}"
                    );
                } else {
                    assert!(matches!(r, Err(Error::Authentication)), "len {len}: {r:?}");
                }
            }
        }
    }
}

#[test]
fn reordering_dropping_duplicating_and_appending_fail() {
    let ct = three_segment_stream();
    let (header, segs) = segments_of(&ct);
    assert_eq!(segs.len(), 3);
    let build = |order: &[usize]| {
        let mut v = header.clone();
        for &i in order {
            v.extend_from_slice(&segs[i]);
        }
        v
    };
    for order in [
        vec![1, 0, 2],
        vec![0, 2, 1],
        vec![2, 1, 0],
        vec![0, 2],
        vec![1, 2],
        vec![0, 1],
        vec![0, 0, 1, 2],
        vec![0, 1, 1, 2],
        vec![0, 1, 2, 2],
        vec![0, 1, 2, 0],
        vec![2],
    ] {
        assert_auth_failure(&build(&order), &format!("segments {order:?}"));
    }
    for extra in [&[0u8][..], &[0u8; TAG_LEN][..], &segs[0][..], &ct[..]] {
        let mut v = ct.clone();
        v.extend_from_slice(extra);
        assert_auth_failure(&v, &format!("appended {} bytes", extra.len()));
    }
    // A valid empty final segment from another stream, appended.
    let empty = seal_to_vec(&key(), &ctx(), params(S, Backend::default()), &[]).unwrap();
    let mut v = ct.clone();
    v.extend_from_slice(&empty[HEADER_LEN..]);
    assert_auth_failure(&v, "appended empty final segment");
}

#[test]
fn segments_from_another_stream_under_the_same_key_fail() {
    let a = three_segment_stream();
    let b = three_segment_stream();
    let (ha, sa) = segments_of(&a);
    let (_, sb) = segments_of(&b);
    let mut mixed = ha;
    mixed.extend_from_slice(&sa[0]);
    mixed.extend_from_slice(&sb[1]);
    mixed.extend_from_slice(&sa[2]);
    assert_auth_failure(&mixed, "segment spliced from another stream");
}

#[test]
fn wrong_key_or_any_changed_context_field_fails() {
    let ct = three_segment_stream();
    let pt = pattern(3 * S as usize);
    let other_key = DataKey::from_slice(&[0x12; 32]).unwrap();
    let contexts = [
        StreamContext::new(b"tenant-b", b"applicant-1", b"document-1", b"pay_stub").unwrap(),
        StreamContext::new(b"tenant-a", b"applicant-2", b"document-1", b"pay_stub").unwrap(),
        StreamContext::new(b"tenant-a", b"applicant-1", b"document-2", b"pay_stub").unwrap(),
        StreamContext::new(b"tenant-a", b"applicant-1", b"document-1", b"lease").unwrap(),
        StreamContext::new(b"tenant-aapplicant-1", b"", b"document-1", b"pay_stub").unwrap(),
    ];
    for &backend in Backend::all() {
        for c in &contexts {
            for r in open_every_way(&ct, &key(), c, backend, &pt) {
                assert!(matches!(r, Err(Error::Authentication)), "{r:?}");
            }
        }
        for r in open_every_way(&ct, &other_key, &ctx(), backend, &pt) {
            assert!(matches!(r, Err(Error::Authentication)), "{r:?}");
        }
    }
}

#[test]
fn a_range_that_stops_before_a_cut_proves_only_its_own_bytes() {
    // Documented behaviour (FORMAT.md §7): cut a three-segment stream after
    // segment 1; a range inside segment 0 still opens (those bytes are
    // authentic), every range reaching the new end fails.
    let ct = three_segment_stream();
    let pt = pattern(3 * S as usize);
    let cut = &ct[..HEADER_LEN + 2 * (S as usize + TAG_LEN)];
    let so = SeekableOpener::new(cut, &key(), &ctx(), Backend::default()).unwrap();
    assert_eq!(so.read_range(10..20).unwrap(), &pt[10..20]);
    let end = so.plaintext_len();
    assert!(matches!(
        so.read_range(end - 1..end),
        Err(Error::Authentication)
    ));
    assert!(matches!(
        so.read_range(end..end),
        Err(Error::Authentication)
    ));
    assert!(matches!(so.read_range(0..end), Err(Error::Authentication)));
}

#[test]
fn open_into_refuses_a_stream_whose_header_differs_from_the_openers() {
    let a = three_segment_stream();
    let mut b = a.clone();
    b[20] ^= 1; // the salt
    let opener = Opener::new(&key(), &ctx(), &a, Backend::default()).unwrap();
    let mut out = vec![0u8; 3 * S as usize];
    assert!(matches!(
        opener.open_into(&b, &mut out, 1),
        Err(Error::Authentication)
    ));
    assert!(out.iter().all(|&x| x == 0));
    opener.open_into(&a, &mut out, 1).unwrap();
}

#[test]
fn the_commitment_is_checked_before_any_segment() {
    // Keep the body, replace only the commitment: the opener must refuse at
    // construction, before it could open anything.
    let mut ct = three_segment_stream();
    ct[HEADER_LEN - 1] ^= 1;
    assert!(matches!(
        Opener::new(&key(), &ctx(), &ct, Backend::default()),
        Err(Error::Authentication)
    ));
    assert!(matches!(
        OpeningReader::new(&ct[..], &key(), &ctx(), Backend::default()),
        Err(Error::Authentication)
    ));
}

#[test]
fn a_bad_segment_releases_nothing_and_later_reads_stay_failed() {
    let mut ct = three_segment_stream();
    // Corrupt the middle of segment 1.
    ct[HEADER_LEN + S as usize + TAG_LEN + 5] ^= 0x40;
    let mut r = OpeningReader::new(&ct[..], &key(), &ctx(), Backend::default()).unwrap();
    let mut first = vec![0u8; S as usize];
    r.read_exact(&mut first).unwrap();
    assert_eq!(first, pattern(S as usize));
    let mut buf = [0u8; 10];
    let e = r.read(&mut buf).unwrap_err();
    assert!(matches!(Error::from(e), Error::Authentication));
    assert_eq!(buf, [0u8; 10], "nothing of the bad segment was copied out");
    assert!(matches!(
        Error::from(r.read(&mut buf).unwrap_err()),
        Error::Poisoned
    ));
}

// ---------------------------------------------------------------------------
// Writers

#[test]
fn writer_output_is_valid_only_after_finish() {
    let pt = pattern(700);
    let mut w =
        SealingWriter::new(Vec::new(), &key(), &ctx(), params(S, Backend::default())).unwrap();
    w.write_all(&pt).unwrap();
    w.flush().unwrap();
    // Not finished: what reached the sink so far does not authenticate.
    let partial = w.get_ref().clone();
    assert_auth_failure(&partial, "unfinished writer output");
    let whole = w.finish().unwrap();
    assert!(whole.starts_with(&partial) && whole.len() > partial.len());
    assert_eq!(
        open_to_vec(&key(), &ctx(), &whole, Backend::default()).unwrap(),
        pt
    );
}

struct FailingSink {
    budget: usize,
}

impl Write for FailingSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if data.len() > self.budget {
            return Err(std::io::Error::other("disk full"));
        }
        self.budget -= data.len();
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_write_poisons_the_writer() {
    let sink = FailingSink {
        budget: HEADER_LEN + 300,
    };
    let mut w = SealingWriter::new(sink, &key(), &ctx(), params(S, Backend::default())).unwrap();
    let e = w.write_all(&pattern(2000)).unwrap_err();
    assert!(matches!(Error::from(e), Error::Io(_)));
    assert!(matches!(
        Error::from(w.write(b"x").unwrap_err()),
        Error::Poisoned
    ));
    assert!(matches!(w.finish(), Err(Error::Poisoned)));
}

#[test]
fn async_stream_adapter_round_trips_and_stops_on_input_error() {
    use bytes::Bytes;
    use futures_util::{StreamExt, stream};

    let pt = pattern(1000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let chunks: Vec<crate::Result<Bytes>> = pt
        .chunks(77)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let sealer = Sealer::new(&key(), &ctx(), params(S, Backend::default())).unwrap();
    let out: Vec<crate::Result<Bytes>> =
        rt.block_on(seal_stream(sealer, stream::iter(chunks)).collect());
    let ct: Vec<u8> = out.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
    assert_eq!(
        open_to_vec(&key(), &ctx(), &ct, Backend::default()).unwrap(),
        pt
    );

    let failing = vec![
        Ok(Bytes::copy_from_slice(&pt[..600])),
        Err(Error::Io(std::io::Error::other("client went away"))),
    ];
    let sealer = Sealer::new(&key(), &ctx(), params(S, Backend::default())).unwrap();
    let out: Vec<crate::Result<Bytes>> =
        rt.block_on(seal_stream(sealer, stream::iter(failing)).collect());
    assert!(matches!(out.last(), Some(Err(Error::Io(_)))));
    let ct: Vec<u8> = out
        .into_iter()
        .filter_map(Result::ok)
        .flat_map(|c| c.to_vec())
        .collect();
    assert_auth_failure(&ct, "stream cut by an input error");
}

// ---------------------------------------------------------------------------
// Random access

/// A `ReadAt` that records every byte range it serves.
struct Counting<'a> {
    data: &'a [u8],
    served: Cell<u64>,
    ranges: std::cell::RefCell<Vec<std::ops::Range<u64>>>,
}

impl ReadAt for Counting<'_> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.data.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.served.set(self.served.get() + buf.len() as u64);
        self.ranges
            .borrow_mut()
            .push(offset..offset + buf.len() as u64);
        self.data.read_exact_at(buf, offset)
    }
}

#[test]
fn range_reads_fetch_only_the_covering_segments() {
    let pt = pattern(10 * S as usize + 17);
    let ct = seal_to_vec(&key(), &ctx(), params(S, Backend::default()), &pt).unwrap();
    let src = Counting {
        data: &ct,
        served: Cell::new(0),
        ranges: Default::default(),
    };
    let so = SeekableOpener::new(&src, &key(), &ctx(), Backend::default()).unwrap();
    assert_eq!(src.served.get(), HEADER_LEN as u64);
    let full = u64::from(S) + TAG_LEN as u64;
    for (range, segments) in [
        (0..1u64, 1u64),
        (255..257, 2),
        (256..512, 1),
        (3 * 256 + 5..3 * 256 + 6, 1),
        (pt.len() as u64 - 1..pt.len() as u64, 1),
        (100..900, 4),
    ] {
        src.served.set(0);
        let got = so.read_range(range.clone()).unwrap();
        assert_eq!(got, &pt[range.start as usize..range.end as usize]);
        let last_seg_short = range.end as usize > 10 * S as usize;
        let expect = if last_seg_short {
            (segments - 1) * full + 17 + TAG_LEN as u64
        } else {
            segments * full
        };
        assert_eq!(src.served.get(), expect, "range {range:?}");
    }
    assert!(matches!(
        so.read_range(0..pt.len() as u64 + 1),
        Err(Error::RangeOutOfBounds)
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 5..4;
    assert!(matches!(
        so.read_range(backwards),
        Err(Error::RangeOutOfBounds)
    ));
    src.served.set(0);
    assert_eq!(so.read_range(7..7).unwrap(), Vec::<u8>::new());
    assert_eq!(
        src.served.get(),
        full,
        "an empty range opens the segment holding it"
    );
    src.served.set(0);
    assert_eq!(
        so.read_range(pt.len() as u64..pt.len() as u64).unwrap(),
        Vec::<u8>::new()
    );
    assert_eq!(
        src.served.get(),
        17 + TAG_LEN as u64,
        "an empty range at the end opens the final segment"
    );
}

#[test]
fn file_backed_random_access() {
    let pt = pattern(5000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let f = std::fs::File::create(&path).unwrap();
    let mut w = SealingWriter::new(f, &key(), &ctx(), params(1024, Backend::default())).unwrap();
    w.write_all(&pt).unwrap();
    w.finish().unwrap().sync_all().unwrap();
    let so = SeekableOpener::new(
        std::fs::File::open(&path).unwrap(),
        &key(),
        &ctx(),
        Backend::default(),
    )
    .unwrap();
    assert_eq!(so.read_range(4000..5000).unwrap(), &pt[4000..]);
}

#[test]
fn metadata_fields_are_bound_to_their_name_and_stream() {
    let sealer = Sealer::new(&key(), &ctx(), params(S, Backend::default())).unwrap();
    let sealed = sealer
        .metadata()
        .seal("file_name", b"passport scan.pdf")
        .unwrap();
    assert!(!sealed.windows(8).any(|w| w == b"passport"));
    let opener = Opener::new(&key(), &ctx(), sealer.header(), Backend::default()).unwrap();
    assert_eq!(
        opener.metadata().open("file_name", &sealed).unwrap(),
        b"passport scan.pdf"
    );
    assert!(matches!(
        opener.metadata().open("content_type", &sealed),
        Err(Error::Authentication)
    ));
    let mut bad = sealed.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(matches!(
        opener.metadata().open("file_name", &bad),
        Err(Error::Authentication)
    ));
    // Another stream's metadata key (same data key, new salt) does not open it.
    let other = Sealer::new(&key(), &ctx(), params(S, Backend::default())).unwrap();
    assert!(matches!(
        other.metadata().open("file_name", &sealed),
        Err(Error::Authentication)
    ));
}

#[test]
fn layout_rejects_impossible_lengths() {
    let s = SegmentSize::new(S).unwrap();
    assert!(matches!(
        Layout::from_ciphertext_len(s, 10),
        Err(Error::Format(FormatError::HeaderTruncated))
    ));
    assert!(matches!(
        Layout::from_ciphertext_len(s, HEADER_LEN as u64 + 15),
        Err(Error::Authentication)
    ));
    let full = u64::from(S) + TAG_LEN as u64;
    // A final segment holding only a tag after a full one.
    assert!(matches!(
        Layout::from_ciphertext_len(s, HEADER_LEN as u64 + full + TAG_LEN as u64),
        Err(Error::Authentication)
    ));
    let too_long = HEADER_LEN as u64 + MAX_SEGMENTS * full + 1 + TAG_LEN as u64;
    assert!(matches!(
        Layout::from_ciphertext_len(s, too_long),
        Err(Error::Format(FormatError::TooLong))
    ));
    assert!(matches!(
        Layout::for_plaintext_len(s, MAX_SEGMENTS * u64::from(S) + 1),
        Err(Error::Format(FormatError::TooLong))
    ));
    assert!(Layout::for_plaintext_len(s, MAX_SEGMENTS * u64::from(S)).is_ok());
}

// ---------------------------------------------------------------------------
// Properties

#[test]
fn runs_refuse_what_would_repeat_a_nonce_or_break_the_stream() {
    let sealer = || Sealer::new(&key(), &ctx(), params(S, Backend::default())).unwrap();
    let s = S as usize;
    let (mut issuer, runs) = sealer().into_runs().unwrap();
    let bad = |r: crate::Result<SegmentRun>| matches!(r, Err(Error::InvalidArgument(_)));
    // Only whole segments before the last; never an empty run after data.
    assert!(bad(issuer.next_run(s + 1, false)));
    assert!(bad(issuer.next_run(0, false)));
    let first = issuer.next_run(2 * s, false).unwrap();
    assert!(bad(issuer.next_run(0, true)));
    let last = issuer.next_run(5, true).unwrap();
    assert!(last.is_last() && issuer.is_ended());
    // Nothing after the last run.
    assert!(bad(issuer.next_run(s, false)));
    assert!(bad(issuer.next_run(1, true)));
    // A run is sealed only by its own stream's sealer, with its own lengths.
    let (mut other_issuer, other) = sealer().into_runs().unwrap();
    let mut out = vec![0u8; first.ciphertext_len()];
    assert!(matches!(
        other.seal(first, &pattern(2 * s), &mut out),
        Err(Error::InvalidArgument(_))
    ));
    let theirs = other_issuer.next_run(s, false).unwrap();
    assert!(matches!(
        runs.seal(theirs, &pattern(s), &mut vec![0u8; s + TAG_LEN]),
        Err(Error::InvalidArgument(_))
    ));
    let r = other_issuer.next_run(s, false).unwrap();
    assert!(matches!(
        other.seal(r, &pattern(s - 1), &mut vec![0u8; s + TAG_LEN]),
        Err(Error::InvalidArgument(_))
    ));
    let r = other_issuer.next_run(s, false).unwrap();
    assert!(matches!(
        other.seal(r, &pattern(s), &mut vec![0u8; s + TAG_LEN - 1]),
        Err(Error::InvalidArgument(_))
    ));
    // Only a fresh sealer splits.
    let mut used = sealer();
    used.push(b"x", |_| Ok(())).unwrap();
    assert!(matches!(used.into_runs(), Err(Error::InvalidArgument(_))));
    // Runs sealed without their last one do not open.
    let (mut issuer, runs) = sealer().into_runs().unwrap();
    let r = issuer.next_run(s, false).unwrap();
    let mut stream = runs.header().to_vec();
    let mut out = vec![0u8; s + TAG_LEN];
    runs.seal(r, &pattern(s), &mut out).unwrap();
    stream.extend_from_slice(&out);
    assert_auth_failure(&stream, "runs without the last");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any plaintext, any segment size, any write chunking and any read size
    /// round-trips on every backend; all backends produce identical bytes
    /// for the same salt.
    #[test]
    fn round_trip(
        len in 0usize..2100,
        seg in prop_oneof![Just(256u32), Just(300), Just(1024)],
        chunk in 1usize..700,
        salt in any::<[u8; SALT_LEN]>(),
    ) {
        let pt = pattern(len);
        let mut streams = Vec::new();
        for &backend in Backend::all() {
            let sealer = Sealer::with_salt(&key(), &ctx(), params(seg, backend), salt).unwrap();
            let mut out = sealer.header().to_vec();
            let mut sealer = sealer;
            for c in pt.chunks(chunk) {
                sealer.push(c, |ct| { out.extend_from_slice(ct); Ok(()) }).unwrap();
            }
            sealer.finish(|ct| { out.extend_from_slice(ct); Ok(()) }).unwrap();
            let mut r = OpeningReader::new(&out[..], &key(), &ctx(), backend).unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            drop(r);
            prop_assert_eq!(&got, &pt);
            // Reads of any size, smaller and larger than a segment.
            let mut r = OpeningReader::new(&out[..], &key(), &ctx(), backend).unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; chunk];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 { break; }
                got.extend_from_slice(&buf[..n]);
            }
            prop_assert_eq!(&got, &pt);
            drop(r);
            streams.push(out);
        }
        for s in &streams[1..] {
            prop_assert_eq!(s, &streams[0]);
        }
    }

    /// Whole-buffer sealing on 1–3 threads equals the streaming path byte for
    /// byte, and parallel opening gives the plaintext back.
    #[test]
    fn parallel_whole_buffer_paths_agree(len in 0usize..3000, threads in 1usize..4, salt in any::<[u8; SALT_LEN]>()) {
        let pt = pattern(len);
        for &backend in Backend::all() {
            let streamed = seal_fixed(&pt, S, backend, salt);
            let sealer = Sealer::with_salt(&key(), &ctx(), params(S, backend), salt).unwrap();
            let mut out = vec![0u8; streamed.len()];
            sealer.seal_into(&pt, &mut out, threads).unwrap();
            prop_assert_eq!(&out, &streamed);
            let opener = Opener::new(&key(), &ctx(), &out, backend).unwrap();
            let mut back = vec![0u8; len];
            opener.open_into(&out, &mut back, threads).unwrap();
            prop_assert_eq!(&back, &pt);
            if len > 0 {
                let mut bad = out.clone();
                bad[HEADER_LEN + (len * 7) % (out.len() - HEADER_LEN)] ^= 4;
                let mut back = vec![0u8; len];
                prop_assert!(matches!(opener.open_into(&bad, &mut back, threads), Err(Error::Authentication)));
                prop_assert!(back.iter().all(|&b| b == 0), "plaintext left behind after a failure");
            }
        }
    }

    /// A stream sealed as runs (any split into whole segments, sealed on
    /// several threads in any order) is byte for byte the streaming path's.
    #[test]
    fn runs_on_threads_equal_the_streaming_path(
        len in 0usize..3000,
        cuts in prop::collection::vec(1usize..4, 0..8),
        salt in any::<[u8; SALT_LEN]>(),
    ) {
        let pt = pattern(len);
        for &backend in Backend::all() {
            let streamed = seal_fixed(&pt, S, backend, salt);
            let sealer = Sealer::with_salt(&key(), &ctx(), params(S, backend), salt).unwrap();
            let (mut issuer, sealer) = sealer.into_runs().unwrap();
            let s = sealer.segment_size();
            // Runs of 1–3 whole segments while more than that remains, then
            // the rest as the last run.
            let mut jobs = Vec::new();
            let mut at = 0;
            for &c in &cuts {
                if len - at <= c * s {
                    break;
                }
                jobs.push((at, issuer.next_run(c * s, false).unwrap()));
                at += c * s;
            }
            jobs.push((at, issuer.next_run(len - at, true).unwrap()));
            prop_assert!(issuer.is_ended());
            let mut outs: Vec<Vec<u8>> = jobs.iter().map(|(_, r)| vec![0u8; r.ciphertext_len()]).collect();
            std::thread::scope(|scope| {
                // In reverse, each on its own thread.
                for ((at, run), out) in jobs.into_iter().zip(outs.iter_mut()).rev() {
                    let sealer = &sealer;
                    let pt = &pt[at..at + run.plaintext_len()];
                    scope.spawn(move || sealer.seal(run, pt, out).unwrap());
                }
            });
            let mut joined = sealer.header().to_vec();
            for o in &outs {
                joined.extend_from_slice(o);
            }
            prop_assert_eq!(&joined, &streamed);
        }
    }

    /// The async opener yields exactly the slice for any range and any input
    /// chunking, and fails on a flipped, missing or extra byte.
    #[test]
    fn async_open_stream_ranges(len in 0usize..2000, a in 0usize..2000, b in 0usize..2000, chunk in 1usize..600, flip in any::<prop::sample::Index>()) {
        use futures::{StreamExt, stream};
        let pt = pattern(len);
        let (a, b) = (a.min(len), b.min(len));
        let (a, b) = (a.min(b), a.max(b));
        let ct = seal_to_vec(&key(), &ctx(), params(S, Backend::default()), &pt).unwrap();
        let layout = Layout::from_ciphertext_len(SegmentSize::new(S).unwrap(), ct.len() as u64).unwrap();
        let plan = layout.plan(a as u64..b as u64).unwrap();
        let r = plan.ciphertext();
        let fetched = ct[r.start as usize..r.end as usize].to_vec();
        let run = |bytes: Vec<u8>| -> crate::Result<Vec<u8>> {
            let opener = Opener::new(&key(), &ctx(), &ct, Backend::default()).unwrap();
            let chunks: Vec<crate::Result<bytes::Bytes>> =
                bytes.chunks(chunk).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
            let out: Vec<crate::Result<bytes::Bytes>> = futures::executor::block_on(
                open_stream(opener, plan.clone(), stream::iter(chunks)).collect(),
            );
            let mut v = Vec::new();
            for c in out {
                v.extend_from_slice(&c?);
            }
            Ok(v)
        };
        prop_assert_eq!(run(fetched.clone()).unwrap(), &pt[a..b]);
        let mut bad = fetched.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 1;
        prop_assert!(matches!(run(bad), Err(Error::Authentication)));
        let mut longer = fetched.clone();
        longer.push(0);
        prop_assert!(matches!(run(longer), Err(Error::Authentication)));
        let shorter = fetched[..fetched.len() - 1].to_vec();
        prop_assert!(matches!(run(shorter), Err(Error::Authentication)));
    }

    /// Any range read equals the slice of the plaintext.
    #[test]
    fn range_equals_slice(len in 1usize..3000, a in 0usize..3000, b in 0usize..3000, seg in prop_oneof![Just(256u32), Just(1000)]) {
        let pt = pattern(len);
        let (a, b) = (a.min(len), b.min(len));
        let (a, b) = (a.min(b), a.max(b));
        let ct = seal_to_vec(&key(), &ctx(), params(seg, Backend::default()), &pt).unwrap();
        for &backend in Backend::all() {
            let so = SeekableOpener::new(&ct[..], &key(), &ctx(), backend).unwrap();
            prop_assert_eq!(so.read_range(a as u64..b as u64).unwrap(), &pt[a..b]);
        }
    }
}
