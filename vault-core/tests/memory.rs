//! Peak memory of a put and a get stays bounded whatever the document size:
//! a child process stores and reads back a document of the given size on
//! local files + SQLite and reports its peak RSS (VmHWM); 1 GiB must peak
//! no higher than 64 MiB does, give or take a small margin.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use vault_core::category::Category;
use vault_core::ids::ApplicantId;
use vault_core::keys::LocalKeyProvider;
use vault_core::store::BlobStoreConfig;
use vault_core::vault::{PutRequest, Vault, VaultConfig};

const CHUNK: usize = 256 * 1024;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn chunk(i: usize) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; CHUNK])
}

/// The child: runs only when started by `peak_rss_is_independent_of_size`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_child() {
    let Some(size) = std::env::var("VAULT_MEMORY_CHILD_BYTES").ok() else {
        return;
    };
    let size: usize = size.parse().unwrap();
    let dir = tempfile::tempdir_in(std::env::var("VAULT_MEMORY_DIR").unwrap()).unwrap();
    let keys = LocalKeyProvider::parse(&format!("1:{}", "ab".repeat(32))).unwrap();
    let config = VaultConfig::new(
        BlobStoreConfig::Local {
            dir: dir.path().join("blobs"),
        },
        format!("sqlite://{}", dir.path().join("meta.db").display()),
        Arc::new(keys),
    );
    let vault = Vault::open(config).await.unwrap();
    let t = vault
        .tenant(
            vault
                .create_tenant("mem", &vault_core::audit::Actor::operator())
                .await
                .unwrap(),
            vault_core::audit::Actor::operator(),
        )
        .await
        .unwrap();
    let chunks = size / CHUNK;
    let body = futures::stream::iter(0..chunks).map(|i| Ok(chunk(i)));
    let req = PutRequest::new(
        ApplicantId::new("a").unwrap(),
        Category::BankStatement,
        "application/pdf",
    );
    let info = t.put(req, Box::pin(body)).await.unwrap();
    assert_eq!(info.size, (chunks * CHUNK) as u64);
    let mut got = t.get(info.id).await.unwrap().body;
    let mut offset = 0usize;
    while let Some(c) = got.next().await {
        let c = c.unwrap();
        // Each piece is one segment's plaintext, inside one input chunk.
        let i = offset / CHUNK;
        assert_eq!(i, (offset + c.len() - 1) / CHUNK);
        assert!(
            c[..] == vec![(i % 251) as u8; c.len()][..],
            "bytes at {offset} differ"
        );
        offset += c.len();
    }
    assert_eq!(offset, chunks * CHUNK);
    println!("VAULT_PEAK_RSS_KIB {}", peak_rss_kib());
}

fn run_child(bytes: u64) -> u64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "memory_child", "--nocapture", "--test-threads=1"])
        .env("VAULT_MEMORY_CHILD_BYTES", bytes.to_string())
        .env("VAULT_MEMORY_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, rest) = stdout
        .split_once("VAULT_PEAK_RSS_KIB ")
        .expect("child printed no peak RSS");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn peak_rss_is_independent_of_size() {
    let small = run_child(64 << 20);
    let large = run_child(1 << 30);
    eprintln!(
        "peak RSS: put+get of 64 MiB {} MiB, of 1 GiB {} MiB",
        small / 1024,
        large / 1024
    );
    // Bounded: a few multipart parts and segments in flight, not the file.
    assert!(large < 160 * 1024, "1 GiB put+get peaked at {large} KiB");
    assert!(
        large < small + 32 * 1024,
        "peak RSS grew with size: {small} KiB → {large} KiB"
    );
}
