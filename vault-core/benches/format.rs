//! Throughput of the stream format against raw AES-256-GCM of the same
//! backend, measured in one run, plus `openssl speed` and ranged reads.
//!
//! Run: `cargo bench -p vault-core --bench format` (full) or with
//! `VAULT_BENCH_QUICK=1` (tiny inputs, for CI: checks the code runs).
//! Every figure is the median of several interleaved rounds, and every
//! ratio is the median of per-round ratios, so a noisy neighbour moves
//! numerator and denominator together. Results go to stdout as Markdown
//! and to `target/vault-bench/format.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use std::io::{Read, Write};
use vault_core::aead::Backend;

use vault_core::format::{
    HEADER_LEN, Layout, Opener, OpeningReader, SealParams, Sealer, SealingWriter, SeekableOpener,
    SegmentSize, StreamContext, seal_to_vec,
};
use vault_core::secret::DataKey;

#[path = "../../benches/report.rs"]
mod report;
use report::{Report, median};

const SEG: usize = 64 * 1024;

struct Cfg {
    rounds: usize,
    min_time: Duration,
}

/// Bytes per second of `f` processing `bytes` per call, over at least
/// `min_time`.
fn rate(cfg: &Cfg, bytes: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm up: page faults, caches
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < cfg.min_time || n < 2 {
        f();
        n += 1;
    }
    bytes as f64 * n as f64 / start.elapsed().as_secs_f64()
}

/// Seconds per call of `f`.
fn latency(cfg: &Cfg, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < cfg.min_time || n < 10 {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn raw_seal(backend: Backend, buf: &mut [u8]) {
    let key = [7u8; 32];
    match backend {
        Backend::AwsLc => {
            use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
            let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
            for (i, chunk) in buf.chunks_mut(SEG).enumerate() {
                let mut n = [0u8; 12];
                n[8..].copy_from_slice(&(i as u32).to_be_bytes());
                let tag = k
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(n),
                        Aad::empty(),
                        chunk,
                    )
                    .unwrap();
                let _ = black_box(tag);
            }
        }
        Backend::RustCrypto => {
            use aes_gcm::aead::AeadInPlace;
            use aes_gcm::{Aes256Gcm, KeyInit};
            let k = Aes256Gcm::new((&key).into());
            for (i, chunk) in buf.chunks_mut(SEG).enumerate() {
                let mut n = [0u8; 12];
                n[8..].copy_from_slice(&(i as u32).to_be_bytes());
                let tag = k
                    .encrypt_in_place_detached((&n).into(), &[], chunk)
                    .unwrap();
                black_box(tag);
            }
        }
        _ => unreachable!(),
    }
}

/// Raw AES-256-GCM with aws-lc, out of place: `pt` into `ct` (each 64 KiB
/// segment and its tag), as the format seals; no format around it.
fn raw_seal_out_of_place(pt: &[u8], ct: &mut [u8]) {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    for (i, (p, c)) in pt.chunks(SEG).zip(ct.chunks_mut(SEG + 16)).enumerate() {
        let mut n = [0u8; 12];
        n[8..].copy_from_slice(&(i as u32).to_be_bytes());
        let (body, tag) = c.split_at_mut(p.len());
        k.seal_out_of_place_scatter(
            Nonce::assume_unique_for_key(n),
            Aad::empty(),
            p,
            body,
            &[],
            tag,
        )
        .unwrap();
    }
    black_box(ct);
}

fn ctx() -> StreamContext {
    StreamContext::new(b"tenant", b"applicant", b"document", b"bank_statement").unwrap()
}

fn params(backend: Backend) -> SealParams {
    SealParams {
        segment_size: SegmentSize::DEFAULT,
        backend,
    }
}

/// `openssl speed -evp aes-256-gcm` at one block size, in bytes/s.
fn openssl_speed(bytes: usize, seconds: u32) -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-256-gcm",
            "-bytes",
            &bytes.to_string(),
            "-seconds",
            &seconds.to_string(),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("aes-256-gcm"))?;
    let last = line.split_whitespace().last()?;
    last.strip_suffix('k')?
        .parse::<f64>()
        .ok()
        .map(|k| k * 1000.0)
}

fn main() {
    let mut rep = Report::new("format");
    let quick = rep.quick();
    let cfg = Cfg {
        rounds: if quick { 1 } else { 5 },
        min_time: Duration::from_millis(if quick { 5 } else { 300 }),
    };
    let sizes: &[usize] = if quick {
        &[1 << 20]
    } else {
        &[1 << 20, 16 << 20, 256 << 20, 1 << 30]
    };
    let key = DataKey::from_slice(&[9u8; 32]).unwrap();
    let ctx = ctx();

    // 1. openssl speed, single core: the reference the default backend must beat.
    let ossl_secs = if quick { 1 } else { 2 };
    let (mut ossl64, mut ossl16) = (vec![], vec![]);
    for _ in 0..if quick { 1 } else { 3 } {
        if let Some(v) = openssl_speed(65536, ossl_secs) {
            ossl64.push(v / 1e6);
        }
        if let Some(v) = openssl_speed(16384, ossl_secs) {
            ossl16.push(v / 1e6);
        }
    }
    if !ossl64.is_empty() {
        rep.add(
            "openssl.speed.64k",
            "openssl speed -evp aes-256-gcm, 64 KiB blocks",
            "MB/s",
            &ossl64,
        );
    }
    if !ossl16.is_empty() {
        rep.add(
            "openssl.speed.16k",
            "openssl speed -evp aes-256-gcm, 16 KiB blocks",
            "MB/s",
            &ossl16,
        );
    }
    let ossl = (!ossl64.is_empty()).then(|| median(&ossl64));

    // 2. Format seal/open against raw AES-256-GCM of the same backend, by size.
    for &size in sizes {
        // As many rounds at 1 GiB as at 1 MiB: a neighbour's burst during
        // one round of a 1 GiB measurement moved a median of three by 15%.
        let rounds = cfg.rounds;
        let plaintext: Vec<u8> = (0..size).map(|i| (i * 131 % 251) as u8).collect();
        for &backend in Backend::all() {
            let layout = Layout::for_plaintext_len(SegmentSize::DEFAULT, size as u64).unwrap();
            let mut ct = vec![0u8; layout.ciphertext_len() as usize];
            let mut raw_buf = plaintext.clone();
            let mut back = vec![0u8; size];
            let sealed = seal_to_vec(&key, &ctx, params(backend), &plaintext).unwrap();
            let [mut raw, mut seal, mut open, mut rs, mut ro] = [(); 5].map(|_| Vec::new());
            let [mut oop, mut roop, mut rsoop] = [(); 3].map(|_| Vec::new());
            let out_of_place = backend == Backend::AwsLc;
            let [mut wseal, mut ropen, mut rws, mut rro] = [(); 4].map(|_| Vec::new());
            let mut read_buf = vec![0u8; 256 * 1024];
            for _ in 0..rounds {
                let r = rate(&cfg, size, || raw_seal(backend, &mut raw_buf));
                // Into the ciphertext buffer the format seal writes too.
                let x = out_of_place.then(|| {
                    rate(&cfg, size, || {
                        raw_seal_out_of_place(&plaintext, &mut ct[HEADER_LEN..])
                    })
                });
                let s = rate(&cfg, size, || {
                    let sealer = Sealer::new(&key, &ctx, params(backend)).unwrap();
                    sealer.seal_into(&plaintext, &mut ct, 1).unwrap();
                });
                let o = rate(&cfg, size, || {
                    let opener = Opener::new(&key, &ctx, &sealed, backend).unwrap();
                    opener.open_into(&sealed, &mut back, 1).unwrap();
                });
                // Streaming adapters: std::io::Write into a discarding sink,
                // std::io::Read from memory with 256 KiB reads.
                let w = rate(&cfg, size, || {
                    let mut wr =
                        SealingWriter::new(std::io::sink(), &key, &ctx, params(backend)).unwrap();
                    for chunk in plaintext.chunks(256 * 1024) {
                        wr.write_all(chunk).unwrap();
                    }
                    wr.finish().unwrap();
                });
                let rd = rate(&cfg, size, || {
                    let mut rr = OpeningReader::new(&sealed[..], &key, &ctx, backend).unwrap();
                    while rr.read(&mut read_buf).unwrap() > 0 {}
                });
                if let Some(x) = x {
                    oop.push(x);
                    roop.push(x / r);
                    rsoop.push(s / x);
                }
                for (v, x) in [
                    (&mut raw, r),
                    (&mut seal, s),
                    (&mut open, o),
                    (&mut wseal, w),
                    (&mut ropen, rd),
                    (&mut rs, s / r),
                    (&mut ro, o / r),
                    (&mut rws, w / r),
                    (&mut rro, rd / r),
                ] {
                    v.push(x);
                }
            }
            assert_eq!(back, plaintext);
            let mb = |v: &[f64]| v.iter().map(|x| x / 1e6).collect::<Vec<_>>();
            let mib = size >> 20;
            let b = backend.name();
            let raw_id = format!("format.raw.{b}.{mib}");
            rep.add(
                &raw_id,
                &format!("raw AES-256-GCM {b}, {mib} MiB, in place, 64 KiB per seal"),
                "MB/s",
                &mb(&raw),
            );
            if out_of_place {
                let oop_id = format!("format.raw_oop.{b}.{mib}");
                rep.add_vs(
                    &oop_id,
                    &format!("raw AES-256-GCM {b}, {mib} MiB, out of place, 64 KiB per seal"),
                    "MB/s",
                    &mb(&oop),
                    &raw_id,
                    &roop,
                );
                rep.add_vs(
                    &format!("format.seal_vs_oop.{b}.{mib}"),
                    &format!("format seal {b}, {mib} MiB, 1 thread (same runs)"),
                    "MB/s",
                    &mb(&seal),
                    &oop_id,
                    &rsoop,
                );
            }
            rep.add_vs(
                &format!("format.seal.{b}.{mib}"),
                &format!("format seal {b}, {mib} MiB, 1 thread"),
                "MB/s",
                &mb(&seal),
                &raw_id,
                &rs,
            );
            rep.add_vs(
                &format!("format.open.{b}.{mib}"),
                &format!("format open {b}, {mib} MiB, 1 thread"),
                "MB/s",
                &mb(&open),
                &raw_id,
                &ro,
            );
            rep.add_vs(
                &format!("format.writer.{b}.{mib}"),
                &format!("streaming SealingWriter {b}, {mib} MiB → sink"),
                "MB/s",
                &mb(&wseal),
                &raw_id,
                &rws,
            );
            rep.add_vs(
                &format!("format.reader.{b}.{mib}"),
                &format!("streaming OpeningReader {b}, {mib} MiB, 256 KiB reads"),
                "MB/s",
                &mb(&ropen),
                &raw_id,
                &rro,
            );
            if let (Some(o), true) = (ossl, backend == Backend::default()) {
                let per_run: Vec<f64> = seal.iter().map(|s| s / 1e6 / o).collect();
                rep.add_vs(
                    &format!("format.seal_vs_openssl.{mib}"),
                    &format!("format seal {b} (default backend), {mib} MiB"),
                    "MB/s",
                    &mb(&seal),
                    "openssl.speed.64k",
                    &per_run,
                );
            }
        }
    }

    // 3. Whole-buffer sealing on 1 and 2 threads (default backend).
    {
        let size = if quick { 1 << 20 } else { 256 << 20 };
        let plaintext = vec![0x5au8; size];
        let layout = Layout::for_plaintext_len(SegmentSize::DEFAULT, size as u64).unwrap();
        let mut ct = vec![0u8; layout.ciphertext_len() as usize];
        let (mut one, mut two, mut ratio) = (vec![], vec![], vec![]);
        for _ in 0..cfg.rounds {
            let mut run = |threads| {
                rate(&cfg, size, || {
                    let sealer = Sealer::new(&key, &ctx, params(Backend::default())).unwrap();
                    sealer.seal_into(&plaintext, &mut ct, threads).unwrap();
                })
            };
            let a = run(1);
            let b = run(2);
            one.push(a / 1e6);
            two.push(b / 1e6);
            ratio.push(b / a);
        }
        let mib = size >> 20;
        rep.add(
            "format.threads.1",
            &format!("format seal, {mib} MiB, 1 thread"),
            "MB/s",
            &one,
        );
        rep.add_vs(
            "format.threads.2",
            &format!("format seal, {mib} MiB, 2 threads"),
            "MB/s",
            &two,
            "format.threads.1",
            &ratio,
        );
    }

    // 4. A 1-byte ranged read at the end of a large stream vs a 1 MiB one
    //    (open the header, check the commitment, fetch and open one segment).
    {
        let big = if quick { 8 << 20 } else { 1 << 30 };
        let small = 1 << 20;
        let make = |n: usize| {
            let pt = vec![0x33u8; n];
            let layout = Layout::for_plaintext_len(SegmentSize::DEFAULT, n as u64).unwrap();
            let mut ct = vec![0u8; layout.ciphertext_len() as usize];
            Sealer::new(&key, &ctx, params(Backend::default()))
                .unwrap()
                .seal_into(&pt, &mut ct, 2)
                .unwrap();
            ct
        };
        let big_ct = make(big);
        let small_ct = make(small);
        let read_last = |ct: &Vec<u8>| {
            let so = SeekableOpener::new(ct, &key, &ctx, Backend::default()).unwrap();
            let n = so.plaintext_len();
            black_box(so.read_range(n - 1..n).unwrap());
        };
        let (mut b, mut s, mut r) = (vec![], vec![], vec![]);
        for _ in 0..cfg.rounds {
            let tb = latency(&cfg, || read_last(&big_ct));
            let ts = latency(&cfg, || read_last(&small_ct));
            b.push(tb * 1e6);
            s.push(ts * 1e6);
            r.push(tb / ts);
        }
        rep.add(
            "format.range_end.1",
            "in memory: 1-byte range at the end of 1 MiB",
            "µs",
            &s,
        );
        rep.add_vs(
            "format.range_end.big",
            &format!("in memory: 1-byte range at the end of {} MiB", big >> 20),
            "µs",
            &b,
            "format.range_end.1",
            &r,
        );
    }
    rep.finish();
}
