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
    Layout, Opener, OpeningReader, SealParams, Sealer, SealingWriter, SeekableOpener, SegmentSize,
    StreamContext, seal_to_vec,
};
use vault_core::secret::DataKey;

const SEG: usize = 64 * 1024;

struct Cfg {
    quick: bool,
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
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

fn cpu() -> (String, Vec<String>) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let flags_line = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let wanted = [
        "aes",
        "pclmulqdq",
        "vaes",
        "vpclmulqdq",
        "avx2",
        "avx512f",
        "sha_ni",
    ];
    let flags = flags_line
        .split_whitespace()
        .filter(|f| wanted.contains(f))
        .map(str::to_string)
        .collect();
    (model, flags)
}

struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    ratio: Option<(f64, String)>,
}

fn main() {
    let quick = std::env::var_os("VAULT_BENCH_QUICK").is_some();
    let cfg = Cfg {
        quick,
        rounds: if quick { 1 } else { 5 },
        min_time: Duration::from_millis(if quick { 5 } else { 400 }),
    };
    let sizes: &[usize] = if quick {
        &[1 << 20]
    } else {
        &[1 << 20, 64 << 20]
    };
    let key = DataKey::from_slice(&[9u8; 32]).unwrap();
    let ctx = ctx();
    let mut rows: Vec<Row> = Vec::new();

    // 1. openssl speed, the reference every figure is also compared with.
    let ossl_secs = if quick { 1 } else { 2 };
    let mut ossl64 = Vec::new();
    let mut ossl16 = Vec::new();
    for _ in 0..if quick { 1 } else { 3 } {
        if let Some(v) = openssl_speed(65536, ossl_secs) {
            ossl64.push(v);
        }
        if let Some(v) = openssl_speed(16384, ossl_secs) {
            ossl16.push(v);
        }
    }
    let ossl = (!ossl64.is_empty()).then(|| median(ossl64.clone()));
    if let Some(o) = ossl {
        rows.push(Row {
            name: "openssl speed -evp aes-256-gcm, 64 KiB".into(),
            value: o / 1e6,
            unit: "MB/s",
            ratio: None,
        });
    }
    if !ossl16.is_empty() {
        rows.push(Row {
            name: "openssl speed -evp aes-256-gcm, 16 KiB".into(),
            value: median(ossl16) / 1e6,
            unit: "MB/s",
            ratio: None,
        });
    }

    // 2. Format seal/open against raw AES-256-GCM of the same backend.
    for &size in sizes {
        let plaintext: Vec<u8> = (0..size).map(|i| (i * 131 % 251) as u8).collect();
        for &backend in Backend::all() {
            let layout = Layout::for_plaintext_len(SegmentSize::DEFAULT, size as u64).unwrap();
            let mut ct = vec![0u8; layout.ciphertext_len() as usize];
            let mut raw_buf = plaintext.clone();
            let mut back = vec![0u8; size];
            let sealed = seal_to_vec(&key, &ctx, params(backend), &plaintext).unwrap();
            let (mut raw, mut seal, mut open, mut rs, mut ro) =
                (vec![], vec![], vec![], vec![], vec![]);
            let (mut wseal, mut ropen, mut rws, mut rro) = (vec![], vec![], vec![], vec![]);
            let mut read_buf = vec![0u8; 256 * 1024];
            for _ in 0..cfg.rounds {
                let r = rate(&cfg, size, || raw_seal(backend, &mut raw_buf));
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
                wseal.push(w);
                ropen.push(rd);
                rws.push(w / r);
                rro.push(rd / r);
                raw.push(r);
                seal.push(s);
                open.push(o);
                rs.push(s / r);
                ro.push(o / r);
            }
            assert_eq!(back, plaintext);
            let mib = size >> 20;
            let b = backend.name();
            rows.push(Row {
                name: format!("raw AES-256-GCM {b}, {mib} MiB, 64 KiB per seal"),
                value: median(raw) / 1e6,
                unit: "MB/s",
                ratio: None,
            });
            let seal_m = median(seal);
            rows.push(Row {
                name: format!("format seal {b}, {mib} MiB, 1 thread"),
                value: seal_m / 1e6,
                unit: "MB/s",
                ratio: Some((median(rs), format!("raw {b}"))),
            });
            rows.push(Row {
                name: format!("format open {b}, {mib} MiB, 1 thread"),
                value: median(open) / 1e6,
                unit: "MB/s",
                ratio: Some((median(ro), format!("raw {b}"))),
            });
            rows.push(Row {
                name: format!("streaming SealingWriter {b}, {mib} MiB → sink"),
                value: median(wseal) / 1e6,
                unit: "MB/s",
                ratio: Some((median(rws), format!("raw {b}"))),
            });
            rows.push(Row {
                name: format!("streaming OpeningReader {b}, {mib} MiB, 256 KiB reads"),
                value: median(ropen) / 1e6,
                unit: "MB/s",
                ratio: Some((median(rro), format!("raw {b}"))),
            });
            if let (Some(o), true) = (ossl, backend == Backend::default()) {
                rows.push(Row {
                    name: format!("format seal {b}, {mib} MiB vs openssl speed 64 KiB"),
                    value: seal_m / 1e6,
                    unit: "MB/s",
                    ratio: Some((seal_m / o, "openssl speed".into())),
                });
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
            one.push(a);
            two.push(b);
            ratio.push(b / a);
        }
        let mib = size >> 20;
        rows.push(Row {
            name: format!("format seal, {mib} MiB, 1 thread"),
            value: median(one) / 1e6,
            unit: "MB/s",
            ratio: None,
        });
        rows.push(Row {
            name: format!("format seal, {mib} MiB, 2 threads"),
            value: median(two) / 1e6,
            unit: "MB/s",
            ratio: Some((median(ratio), "1 thread".into())),
        });
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
            b.push(tb);
            s.push(ts);
            r.push(tb / ts);
        }
        rows.push(Row {
            name: "1-byte range at the end of 1 MiB".into(),
            value: median(s) * 1e6,
            unit: "µs",
            ratio: None,
        });
        rows.push(Row {
            name: format!("1-byte range at the end of {} MiB", big >> 20),
            value: median(b) * 1e6,
            unit: "µs",
            ratio: Some((median(r), "1 MiB".into())),
        });
    }

    let (model, flags) = cpu();
    println!(
        "\n## Stream format benchmark{}\n",
        if cfg.quick {
            " (quick mode: tiny inputs, figures meaningless)"
        } else {
            ""
        }
    );
    println!(
        "CPU: {model}; flags: {}; cores: {}",
        flags.join(" "),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "Medians of {} interleaved rounds; ratios are medians of per-round ratios.\n",
        cfg.rounds
    );
    println!("| measurement | value | ratio | baseline |\n|---|---:|---:|---|");
    for r in &rows {
        let (ratio, base) = r
            .ratio
            .as_ref()
            .map(|(x, b)| (format!("{x:.2}×"), b.as_str()))
            .unwrap_or(("".into(), ""));
        println!(
            "| {} | {:.1} {} | {} | {} |",
            r.name, r.value, r.unit, ratio, base
        );
    }
    let json_rows: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"name\":{:?},\"value\":{:.3},\"unit\":{:?},\"ratio\":{},\"baseline\":{:?}}}",
                r.name,
                r.value,
                r.unit,
                r.ratio
                    .as_ref()
                    .map(|(x, _)| format!("{x:.4}"))
                    .unwrap_or("null".into()),
                r.ratio.as_ref().map(|(_, b)| b.as_str()).unwrap_or("")
            )
        })
        .collect();
    let json = format!(
        "{{\"quick\":{},\"cpu\":{:?},\"flags\":{:?},\"rounds\":{},\"rows\":[{}]}}\n",
        cfg.quick,
        model,
        flags,
        cfg.rounds,
        json_rows.join(",")
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/vault-bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("format.json"), json).unwrap();
}
