//! Fixtures shared by vault-core's integration tests: a vault on SQLite +
//! local files, a vault on PostgreSQL (a fresh schema per test) + a real
//! S3-compatible server (s3s-fs on loopback), and helpers.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod probe;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use tempfile::TempDir;
use vault_core::format::SegmentSize;
use vault_core::keys::{LocalKeyProvider, RootKeyVersion};
use vault_core::secret::RootKey;
use vault_core::store::{BlobStoreConfig, S3Config};
use vault_core::vault::{Vault, VaultConfig};

pub use vault_e2e::{
    S3_KEY, S3_SECRET, S3Server, new_pg_schema, pg_url_with_schema, postgres_url, shared_s3,
};

/// The vault's S3 configuration for a bucket of the test server.
pub trait S3ConfigExt {
    fn config(&self, bucket: &str) -> S3Config;
}

impl S3ConfigExt for S3Server {
    fn config(&self, bucket: &str) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint.clone()),
            bucket: bucket.into(),
            region: "us-east-1".into(),
            access_key_id: S3_KEY.into(),
            secret_access_key: S3_SECRET.into(),
            allow_http: true,
        }
    }
}

pub fn key_provider() -> Arc<LocalKeyProvider> {
    Arc::new(
        LocalKeyProvider::new(vec![(
            RootKeyVersion::new(1).unwrap(),
            RootKey::generate().unwrap(),
        )])
        .unwrap(),
    )
}

/// Which storage a fixture uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    SqliteLocal,
    PostgresS3,
}

/// A vault for one test, with everything it needs to reopen it or poke at
/// its storage.
pub struct Fixture {
    pub kind: Kind,
    pub vault: Vault,
    pub config: VaultConfig,
    pub dir: TempDir,
    /// Local: the blob directory. S3: the bucket's directory inside s3s-fs's data.
    pub blob_dir: PathBuf,
    pub metadata_url: String,
    pub pg_schema: Option<String>,
}

pub const TEST_SEGMENT: u32 = 4096;

impl Fixture {
    pub async fn new(kind: Kind) -> Fixture {
        Self::with_blobs(kind, None).await
    }

    /// A fixture whose blob store is `wrap`ped (for counting or faults).
    pub async fn with_blobs(
        kind: Kind,
        wrap: Option<&dyn Fn(BlobStoreConfig) -> BlobStoreConfig>,
    ) -> Fixture {
        Self::build(kind, wrap, key_provider()).await
    }

    /// A fixture whose vault uses `keys`.
    pub async fn with_keys(kind: Kind, keys: Arc<LocalKeyProvider>) -> Fixture {
        Self::build(kind, None, keys).await
    }

    async fn build(
        kind: Kind,
        wrap: Option<&dyn Fn(BlobStoreConfig) -> BlobStoreConfig>,
        keys: Arc<LocalKeyProvider>,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (blobs, blob_dir, metadata_url, pg_schema) = match kind {
            Kind::SqliteLocal => {
                let blob_dir = dir.path().join("blobs");
                let url = format!("sqlite://{}", dir.path().join("meta.db").display());
                (
                    BlobStoreConfig::Local {
                        dir: blob_dir.clone(),
                    },
                    blob_dir.join("blobs"),
                    url,
                    None,
                )
            }
            Kind::PostgresS3 => {
                let s3 = shared_s3();
                let bucket = s3.bucket();
                let schema = new_pg_schema().await;
                let url = pg_url_with_schema(&schema);
                (
                    BlobStoreConfig::S3(s3.config(&bucket)),
                    s3.data.path().join(&bucket).join("blobs"),
                    url,
                    Some(schema),
                )
            }
        };
        let blobs = match wrap {
            Some(w) => w(blobs),
            None => blobs,
        };
        let config = VaultConfig::new(blobs, metadata_url.clone(), keys)
            .with_segment_size(SegmentSize::new(TEST_SEGMENT).unwrap());
        let vault = Vault::open(config.clone()).await.unwrap();
        Fixture {
            kind,
            vault,
            config,
            dir,
            blob_dir,
            metadata_url,
            pg_schema,
        }
    }

    /// Blob files as stored (local directory or s3s-fs bucket directory).
    pub fn blob_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(&self.blob_dir) {
            Ok(rd) => rd
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file() && !p.to_string_lossy().contains('#'))
                .collect(),
            Err(_) => vec![],
        }
    }
}

/// A body stream of `data` in chunks of `chunk` bytes.
pub fn body(
    data: &[u8],
    chunk: usize,
) -> impl Stream<Item = vault_core::Result<Bytes>> + Send + Unpin + 'static {
    let chunks: Vec<vault_core::Result<Bytes>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks)
}

/// Collects a download body.
pub async fn collect(
    body: BoxStream<'static, vault_core::Result<Bytes>>,
) -> vault_core::Result<Vec<u8>> {
    let chunks: Vec<Bytes> = body.try_collect().await?;
    Ok(chunks.concat())
}

/// Deterministic test content.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Drains a stream, returning only whether it failed.
pub async fn drain<S: Stream<Item = vault_core::Result<Bytes>> + Unpin>(
    mut s: S,
) -> vault_core::Result<u64> {
    let mut n = 0;
    while let Some(c) = s.next().await {
        n += c?.len() as u64;
    }
    Ok(n)
}

/// Copies a directory tree (SQLite may remove its -wal/-shm files while we
/// copy, after checkpointing them: those are skipped).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            match std::fs::copy(&p, &dest) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

/// The raw `object_store` behind a local or S3 blob configuration, for
/// tests that wrap it or write to it directly.
pub fn raw_store(cfg: &BlobStoreConfig) -> Arc<dyn object_store::ObjectStore> {
    match cfg {
        BlobStoreConfig::Local { dir } => {
            std::fs::create_dir_all(dir).unwrap();
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .unwrap()
                    .with_fsync(true),
            )
        }
        BlobStoreConfig::S3(c) => Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_endpoint(c.endpoint.clone().unwrap())
                .with_bucket_name(&c.bucket)
                .with_region(&c.region)
                .with_access_key_id(&c.access_key_id)
                .with_secret_access_key(&c.secret_access_key)
                .with_allow_http(true)
                .build()
                .unwrap(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}
