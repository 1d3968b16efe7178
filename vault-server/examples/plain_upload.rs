//! Benchmark baseline: the same HTTP stack as `vault serve` (axum on
//! hyper, plain HTTP) storing request bodies as plain files with fsync, and
//! serving them back. No authentication, no encryption, no database: what
//! a bare static-file upload server costs. Used by `benches/server.sh`.
//!
//! `plain_upload DIR` prints `listening on http://ADDR` and serves
//! `POST /upload` (→ `201` with the file's name) and `GET /files/{name}`.
#![forbid(unsafe_code)]

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

async fn upload(
    State(dir): State<Arc<PathBuf>>,
    body: Body,
) -> Result<(StatusCode, String), StatusCode> {
    let name = uuid::Uuid::new_v4().simple().to_string();
    let path = dir.join(&name);
    let mut f = tokio::fs::File::create(&path)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let mut s = body.into_data_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
        f.write_all(&chunk)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    }
    f.sync_all()
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok((StatusCode::CREATED, name))
}

async fn download(
    State(dir): State<Arc<PathBuf>>,
    Path(name): Path<String>,
) -> Result<Body, StatusCode> {
    if !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StatusCode::BAD_REQUEST);
    }
    let f = tokio::fs::File::open(dir.join(name))
        .await
        .map_err(|_| StatusCode::NOT_FOUND)?;
    Ok(Body::from_stream(tokio_util_like::reader_stream(f)))
}

/// A file as a stream of 256 KiB chunks.
mod tokio_util_like {
    use bytes::Bytes;
    use futures::Stream;
    use tokio::io::AsyncReadExt;

    pub(crate) fn reader_stream(f: tokio::fs::File) -> impl Stream<Item = std::io::Result<Bytes>> {
        futures::stream::unfold(Some(f), |state| async move {
            let mut f = state?;
            let mut buf = vec![0u8; 256 * 1024];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let dir = std::env::args().nth(1).ok_or("usage: plain_upload DIR")?;
    let app = Router::new()
        .route("/upload", post(upload).layer(DefaultBodyLimit::disable()))
        .route("/files/{name}", get(download))
        .with_state(Arc::new(PathBuf::from(dir)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "listening on http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
