//! An `ObjectStore` wrapper that records the byte ranges read and injects
//! faults, around any real store (local files or S3).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

/// Shared switches and records of a [`Probe`].
#[derive(Debug, Default)]
pub struct ProbeState {
    /// Byte ranges requested by GETs (`None` = whole object).
    pub gets: Mutex<Vec<Option<Range<u64>>>>,
    /// Multipart parts still allowed before every part fails; negative =
    /// unlimited.
    pub parts_left: AtomicI64,
    /// Fail every `complete`.
    pub fail_complete: AtomicBool,
    /// Fail every GET.
    pub fail_get: AtomicBool,
}

impl ProbeState {
    pub fn new() -> Arc<Self> {
        let s = Self::default();
        s.parts_left.store(-1, Ordering::SeqCst);
        Arc::new(s)
    }

    pub fn take_gets(&self) -> Vec<Option<Range<u64>>> {
        std::mem::take(&mut *self.gets.lock().unwrap())
    }
}

fn injected() -> object_store::Error {
    object_store::Error::Generic {
        store: "probe",
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (injected)",
        )),
    }
}

#[derive(Debug)]
pub struct Probe {
    pub inner: Arc<dyn ObjectStore>,
    pub state: Arc<ProbeState>,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Probe({})", self.inner)
    }
}

#[derive(Debug)]
struct ProbeUpload {
    inner: Box<dyn MultipartUpload>,
    state: Arc<ProbeState>,
}

#[async_trait]
impl MultipartUpload for ProbeUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let left = self.state.parts_left.load(Ordering::SeqCst);
        if left == 0 {
            return Box::pin(async { Err(injected()) });
        }
        if left > 0 {
            self.state.parts_left.fetch_sub(1, Ordering::SeqCst);
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        if self.state.fail_complete.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for Probe {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(ProbeUpload {
            inner,
            state: Arc::clone(&self.state),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if self.state.fail_get.load(Ordering::SeqCst) {
            return Err(injected());
        }
        let range = match &options.range {
            Some(GetRange::Bounded(r)) => Some(r.clone()),
            Some(_) => panic!("the vault asks only for bounded ranges"),
            None => None,
        };
        if !options.head {
            self.state.gets.lock().unwrap().push(range);
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
