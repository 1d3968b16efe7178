//! Blob storage through `object_store`: local files by default, any
//! S3-compatible service at scale.
//!
//! Objects are named `blobs/<random UUID>`: no tenant, applicant, category or
//! file name ever appears in an object name. Blobs hold only stream-format
//! ciphertext.

use std::fmt;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};

use crate::error::{Error, Result};

/// Bytes per multipart part (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight per upload; bounds an upload's memory to about
/// `(PART_IN_FLIGHT + 1) * PART_SIZE`.
const PARTS_IN_FLIGHT: usize = 2;
/// Directory (prefix) holding every blob.
const BLOB_PREFIX: &str = "blobs";

/// Where blobs live.
#[derive(Clone)]
#[non_exhaustive]
pub enum BlobStoreConfig {
    /// A directory on the local file system. Every write is fsynced (file
    /// and directory) before it is acknowledged.
    Local {
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// An S3-compatible service.
    S3(S3Config),
    /// Any `object_store` implementation (for example one wrapped in a
    /// metrics or fault-injection layer). Its durability is its own.
    Custom(Arc<dyn ObjectStore>),
}

impl fmt::Debug for BlobStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobStoreConfig::Local { dir } => f.debug_struct("Local").field("dir", dir).finish(),
            BlobStoreConfig::S3(s3) => s3.fmt(f),
            BlobStoreConfig::Custom(s) => write!(f, "Custom({s})"),
        }
    }
}

/// An S3-compatible bucket.
#[derive(Clone)]
pub struct S3Config {
    /// Endpoint URL (`http://127.0.0.1:9000`), or `None` for AWS.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Region (`us-east-1` for most S3-compatible servers).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (printed masked).
    pub secret_access_key: String,
    /// Allow plain HTTP (for a server on loopback only).
    pub allow_http: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"******")
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// The name of one blob: a random UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BlobName(uuid::Uuid);

impl BlobName {
    pub(crate) fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    pub(crate) fn parse(s: &str) -> Result<Self> {
        uuid::Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| Error::Corrupt("malformed blob name"))
    }

    pub(crate) fn as_string(&self) -> String {
        self.0.hyphenated().to_string()
    }

    fn path(&self) -> Path {
        Path::from(format!("{BLOB_PREFIX}/{}", self.0.hyphenated()))
    }
}

/// A blob as listed: its name and when it was last written.
#[derive(Debug)]
pub(crate) struct ListedBlob {
    pub(crate) name: BlobName,
    pub(crate) last_modified: SystemTime,
}

/// The vault's view of an object store.
#[derive(Clone)]
pub(crate) struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    /// Set for the local store: the directory, for sweeping staging files
    /// that `object_store` hides from listings.
    local_dir: Option<PathBuf>,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobStore({})", self.inner)
    }
}

impl BlobStore {
    pub(crate) fn open(config: &BlobStoreConfig) -> Result<Self> {
        match config {
            BlobStoreConfig::Local { dir } => {
                std::fs::create_dir_all(dir).map_err(Error::Io)?;
                let fs = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true);
                Ok(Self {
                    inner: Arc::new(fs),
                    local_dir: Some(dir.clone()),
                })
            }
            BlobStoreConfig::S3(c) => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&c.bucket)
                    .with_region(&c.region)
                    .with_access_key_id(&c.access_key_id)
                    .with_secret_access_key(&c.secret_access_key)
                    .with_allow_http(c.allow_http)
                    .with_virtual_hosted_style_request(false);
                if let Some(e) = &c.endpoint {
                    b = b.with_endpoint(e);
                }
                Ok(Self {
                    inner: Arc::new(b.build()?),
                    local_dir: None,
                })
            }
            BlobStoreConfig::Custom(store) => Ok(Self {
                inner: Arc::clone(store),
                local_dir: None,
            }),
        }
    }

    /// Writes `chunks` as the blob `name` through a multipart upload, and
    /// returns the number of bytes written. The blob exists (durably) only
    /// once this returns `Ok`; on any error the upload is aborted.
    pub(crate) async fn put_stream<S>(&self, name: BlobName, mut chunks: S) -> Result<u64>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        let upload = self.inner.put_multipart(&name.path()).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut written = 0u64;
        let result: Result<()> = async {
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                written += chunk.len() as u64;
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                writer.finish().await?;
                Ok(written)
            }
            Err(e) => {
                // Best effort: a failed abort leaves an incomplete upload
                // that the sweep (local) or a bucket lifecycle rule (S3)
                // removes.
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// Streams bytes `range` of blob `name`, after checking that the blob is
    /// exactly `expected_len` bytes long (a blob cut short or extended is
    /// reported as [`Error::Authentication`], like any tampering).
    /// Local files are read in pieces of `read_chunk` bytes (the caller
    /// passes a whole number of segments, so pieces need no re-framing).
    pub(crate) async fn get_range(
        &self,
        name: BlobName,
        range: Range<u64>,
        expected_len: u64,
        read_chunk: u64,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..Default::default()
        };
        let res = self
            .inner
            .get_opts(&name.path(), opts)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    Error::Corrupt("a committed document's blob is missing")
                }
                other => Error::Storage(other),
            })?;
        if res.meta.size != expected_len {
            return Err(Error::Authentication);
        }
        if res.range != range {
            return Err(Error::Storage(object_store::Error::Generic {
                store: "vault",
                source: "the store returned another range than the one asked for".into(),
            }));
        }
        Ok(match res.payload {
            // `object_store` would read a local file in 8 KiB chunks, one
            // blocking task each (about 260 MB/s here); read about 1 MiB at
            // a time instead.
            GetResultPayload::File(file, _) => file_stream(file, range, read_chunk.max(4096)),
            GetResultPayload::Stream(s) => s.map_err(Error::from).boxed(),
        })
    }

    /// Writes a small object (an audit checkpoint, a ledger entry) under
    /// `path` (never under `blobs/`), durably.
    pub(crate) async fn put_small(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        debug_assert!(!path.starts_with(BLOB_PREFIX));
        self.inner.put(&Path::from(path), bytes.into()).await?;
        Ok(())
    }

    /// Reads a small object.
    pub(crate) async fn get_small(&self, path: &str) -> Result<Vec<u8>> {
        Ok(self
            .inner
            .get(&Path::from(path))
            .await?
            .bytes()
            .await?
            .to_vec())
    }

    /// Paths of the small objects under `prefix`.
    pub(crate) async fn list_small(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .map_err(Error::from)
            .try_collect()
            .await
    }

    /// Deletes blob `name`; a blob that is already gone is not an error.
    pub(crate) async fn delete(&self, name: BlobName) -> Result<()> {
        match self.inner.delete(&name.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::Storage(e)),
        }
    }

    /// Every blob in the store.
    pub(crate) fn list(&self) -> BoxStream<'static, Result<ListedBlob>> {
        self.inner
            .list(Some(&Path::from(BLOB_PREFIX)))
            .map(|r| {
                let meta = r?;
                let name = meta
                    .location
                    .filename()
                    .ok_or(Error::Corrupt("blob without a name"))
                    .and_then(BlobName::parse)?;
                Ok(ListedBlob {
                    name,
                    last_modified: meta.last_modified.into(),
                })
            })
            .boxed()
    }

    /// Removes the local store's staging files (uploads interrupted by a
    /// crash, invisible to `list`) last written more than `grace` ago.
    /// Returns how many were removed. A no-op for other stores: on S3,
    /// incomplete multipart uploads are removed by the bucket's lifecycle
    /// rule (`docs/OPERATIONS.md`).
    pub(crate) fn sweep_staging(&self, grace: Duration) -> Result<u64> {
        let Some(dir) = &self.local_dir else {
            return Ok(0);
        };
        sweep_staging_dir(&dir.join(BLOB_PREFIX), grace)
    }
}

/// Streams `range` of a local file in `chunk`-byte pieces, read ahead by a
/// blocking task (at most two pieces queued), so reading overlaps with the
/// consumer's decryption. A file shorter than the range (cut while being
/// read) ends the stream with [`Error::Authentication`], like any other
/// truncation. Dropping the stream stops the reader.
fn file_stream(
    file: std::fs::File,
    range: Range<u64>,
    chunk: u64,
) -> BoxStream<'static, Result<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file;
        if let Err(e) = f.seek(SeekFrom::Start(range.start)) {
            let _ = tx.blocking_send(Err(Error::Io(e)));
            return;
        }
        let mut pos = range.start;
        while pos < range.end {
            let want = (range.end - pos).min(chunk) as usize;
            // read_to_end fills spare capacity without zeroing it first.
            let mut buf = Vec::with_capacity(want);
            let item = match (&mut f).take(want as u64).read_to_end(&mut buf) {
                Ok(n) if n == want => Ok(Bytes::from(buf)),
                Ok(_) => Err(Error::Authentication),
                Err(e) => Err(Error::Io(e)),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
            pos += want as u64;
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

fn sweep_staging_dir(dir: &FsPath, grace: Duration) -> Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::Io(e)),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(Error::Io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_staging = name
            .split_once('#')
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !is_staging {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .map_err(Error::Io)?;
        if now.duration_since(modified).unwrap_or_default() >= grace {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_secret_is_masked() {
        let c = S3Config {
            endpoint: Some("http://127.0.0.1:1".into()),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI-very-secret".into(),
            allow_http: true,
        };
        let shown = format!("{:?}", BlobStoreConfig::S3(c));
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("******"));
    }

    #[test]
    fn blob_names_carry_nothing_but_a_uuid() {
        let n = BlobName::random();
        let p = n.path().to_string();
        assert!(p.starts_with("blobs/"));
        assert_eq!(p.len(), "blobs/".len() + 36);
        assert_eq!(BlobName::parse(&n.as_string()).unwrap(), n);
    }
}
