//! A 1 GiB document through the real server, up and down, with the
//! server's peak RSS measured: memory stays bounded whatever the size.
//! (`VAULT_LARGE_BYTES` overrides the size.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use support::{Backend, JsonOk, Server, pdf};

const CHUNK: usize = 1 << 20;

/// Chunk `i` of a deterministic document.
fn chunk(base: &Bytes, i: u64) -> Bytes {
    if i == 0 {
        return base.clone();
    }
    let mut v = base.to_vec();
    v[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(v)
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

/// Uploads `size` bytes streamed, downloads them streamed, checks the
/// SHA-256 both ways; returns the server's peak RSS afterwards.
async fn round_trip(s: &Server, key: &str, size: u64) -> u64 {
    let base = Bytes::from(pdf(CHUNK, 42));
    let chunks = size.div_ceil(CHUNK as u64);
    let piece = move |i: u64| {
        let c = chunk(&base, i);
        let len = (size - i * CHUNK as u64).min(CHUNK as u64) as usize;
        c.slice(..len)
    };
    let mut h = Sha256::new();
    for i in 0..chunks {
        h.update(piece(i));
    }
    let expected: [u8; 32] = h.finalize().into();
    use base64::Engine;
    let digest = base64::engine::general_purpose::STANDARD.encode(expected);
    let piece2 = piece.clone();
    let body = futures::stream::iter(0..chunks).map(move |i| Ok::<_, std::io::Error>(piece2(i)));
    let r = s
        .http
        .post(s.url("/v1/applicants/big/documents?category=bank_statement"))
        .bearer_auth(key)
        .header("content-type", "application/pdf")
        .header("content-length", size.to_string())
        .header("content-digest", format!("sha-256=:{digest}:"))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let meta = r.json_ok().await;
    assert_eq!(meta["size"], size);
    let id = meta["id"].as_str().unwrap().to_owned();

    let r = s
        .http
        .get(s.url(&format!("/v1/documents/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(c) = stream.next().await {
        let c = c.unwrap();
        n += c.len() as u64;
        h.update(&c);
    }
    assert_eq!(n, size);
    assert_eq!(<[u8; 32]>::from(h.finalize()), expected);
    peak_rss_kib(s.pid())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_up_and_down_with_bounded_server_memory() {
    let size: u64 = std::env::var("VAULT_LARGE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let settings = support::TEST_SERVER.replace(
        "max_upload_bytes = 4194304",
        "max_upload_bytes = 4294967296",
    );
    let s = Server::with_settings(Backend::SqliteLocal, &settings);
    let key = s.key("agent").await;
    let small = round_trip(&s, &key, 32 << 20).await;
    let large = round_trip(&s, &key, size).await;
    eprintln!(
        "server peak RSS: {} MiB after a 32 MiB round trip, {} MiB after {} MiB",
        small / 1024,
        large / 1024,
        size >> 20
    );
    assert!(
        large <= small + 48 * 1024,
        "peak RSS grew with the document: {small} KiB -> {large} KiB"
    );
    assert!(large < 256 * 1024, "peak RSS {large} KiB");
}
