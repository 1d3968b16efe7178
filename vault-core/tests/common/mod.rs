//! Fixtures shared by vault-core's integration tests: a vault on SQLite +
//! local files, a vault on PostgreSQL (a fresh schema per test) + a real
//! S3-compatible server (s3s-fs on loopback), and helpers.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod probe;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use tempfile::TempDir;
use vault_core::format::SegmentSize;
use vault_core::keys::{LocalKeyProvider, RootKeyVersion};
use vault_core::secret::RootKey;
use vault_core::store::{BlobStoreConfig, S3Config};
use vault_core::vault::{Vault, VaultConfig};

pub const S3_KEY: &str = "vault-test-access";
pub const S3_SECRET: &str = "vault-test-secret";

/// PostgreSQL for tests: `VAULT_TEST_POSTGRES_URL`, else the local server.
pub fn postgres_url() -> String {
    std::env::var("VAULT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A running s3s-fs on a free loopback port, stopped when dropped (or when
/// the test process exits: it watches our pipe).
pub struct S3Server {
    pub endpoint: String,
    pub data: TempDir,
    child: Child,
}

fn s3s_fs_binary() -> PathBuf {
    if let Ok(p) = std::env::var("VAULT_TEST_S3S_FS") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cargo_bin = PathBuf::from(home).join(".cargo/bin/s3s-fs");
    if cargo_bin.exists() {
        return cargo_bin;
    }
    PathBuf::from("s3s-fs")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl S3Server {
    pub fn start() -> S3Server {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Self::spawn(&data, port);
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            data,
            child,
        }
    }

    fn port(&self) -> u16 {
        self.endpoint.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Stops the server and starts a new one on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(&self.data, self.port());
    }

    fn spawn(data: &TempDir, port: u16) -> Child {
        let bin = s3s_fs_binary();
        // The shell wrapper ends the server when our end of its stdin
        // closes, so no server outlives the test process.
        let script = format!(
            "\"$0\" --host 127.0.0.1 --port {port} --access-key {S3_KEY} --secret-key {S3_SECRET} \"$1\" >/dev/null 2>&1 & p=$!; \
             echo started; cat >/dev/null; kill $p 2>/dev/null; wait $p 2>/dev/null"
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .arg(&bin)
            .arg(data.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start s3s-fs ({}): {e}; run .ci/run or `cargo install s3s-fs@0.14.1 --features binary --locked`", bin.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs ({}) did not start on port {port}",
                bin.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// A new empty bucket (a directory, for s3s-fs).
    pub fn bucket(&self) -> String {
        let name = format!("b{}", uuid::Uuid::new_v4().simple());
        std::fs::create_dir(self.data.path().join(&name)).unwrap();
        name
    }

    pub fn config(&self, bucket: &str) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint.clone()),
            bucket: bucket.into(),
            region: "us-east-1".into(),
            access_key_id: S3_KEY.into(),
            secret_access_key: S3_SECRET.into(),
            allow_http: true,
        }
    }

    /// Stops the server (for fault tests).
    pub fn stop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        let port = self.port();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One S3 server shared by every test of this process.
pub fn shared_s3() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(S3Server::start)
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

pub fn pg_url_with_schema(schema: &str) -> String {
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

pub async fn new_pg_schema() -> String {
    let schema = format!("vt_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&postgres_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is not reachable: {e}; run .ci/run",
                postgres_url()
            )
        });
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    schema
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
