//! One behaviour suite, run unchanged on SQLite + local files and on
//! PostgreSQL + a real S3-compatible server (s3s-fs on loopback).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use common::probe::{Probe, ProbeState};
use common::{Fixture, Kind, S3ConfigExt, TEST_SEGMENT, body, collect, content, drain};
use futures::{StreamExt, stream};
use object_store::ObjectStore;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use vault_core::Error;
use vault_core::category::Category;
use vault_core::ids::{ApplicantId, DocumentId, TenantId};
use vault_core::store::BlobStoreConfig;
use vault_core::vault::{PutRequest, Tenant};

const SEG: usize = TEST_SEGMENT as usize;
const FULL: u64 = TEST_SEGMENT as u64 + 16;
const HEADER: u64 = 74;

fn applicant(s: &str) -> ApplicantId {
    ApplicantId::new(s).unwrap()
}

fn req(a: &str) -> PutRequest {
    let mut r = PutRequest::new(applicant(a), Category::PayStub, "application/pdf");
    r.file_name = Some("Jane Doe pay stub March.pdf".into());
    r
}

async fn put(t: &Tenant, a: &str, data: &[u8]) -> vault_core::vault::DocumentInfo {
    t.put(req(a), body(data, 1000)).await.unwrap()
}

async fn read(t: &Tenant, id: DocumentId) -> vault_core::Result<Vec<u8>> {
    collect(t.get(id).await?.body).await
}

async fn new_tenant(f: &Fixture, name: &str) -> Tenant {
    let id = f
        .vault
        .create_tenant(name, &vault_core::audit::Actor::operator())
        .await
        .unwrap();
    f.vault
        .tenant(id, vault_core::audit::Actor::operator())
        .await
        .unwrap()
}

async fn sql(f: &Fixture) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(&f.metadata_url).await.unwrap()
}

// ---------------------------------------------------------------------------

async fn round_trip_at_segment_edges(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    for (i, len) in [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 5, 10 * SEG]
        .into_iter()
        .enumerate()
    {
        let data = content(i as u64, len);
        let mut r = req("app-1");
        r.compute_sha256 = true;
        let info = t.put(r, body(&data, 777)).await.unwrap();
        assert_eq!(info.size, len as u64);
        assert_eq!(
            info.sha256.unwrap(),
            <[u8; 32]>::from(Sha256::digest(&data))
        );
        assert_eq!(read(&t, info.id).await.unwrap(), data, "len {len}");
        let head = t.head(info.id).await.unwrap();
        assert_eq!(head, info);
        assert_eq!(
            head.file_name.as_deref(),
            Some("Jane Doe pay stub March.pdf")
        );
    }
    let page = t.list(&applicant("app-1"), None, 100).await.unwrap();
    assert_eq!(page.documents.len(), 7);
    assert!(page.next.is_none());
    // Pagination visits every document once, in order.
    let mut seen = vec![];
    let mut cursor = None;
    loop {
        let p = t
            .list(&applicant("app-1"), cursor.as_ref(), 3)
            .await
            .unwrap();
        seen.extend(p.documents.iter().map(|d| d.id));
        match p.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        seen,
        page.documents.iter().map(|d| d.id).collect::<Vec<_>>()
    );
    assert!(
        t.list(&applicant("nobody"), None, 10)
            .await
            .unwrap()
            .documents
            .is_empty()
    );
}

async fn digest_checked_and_wrong_digest_stores_nothing(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    let data = content(7, 3 * SEG);
    let mut r = req("app-1");
    r.expected_sha256 = Some(Sha256::digest(&data).into());
    let ok = t.put(r.clone(), body(&data, 500)).await.unwrap();
    assert_eq!(read(&t, ok.id).await.unwrap(), data);
    r.expected_sha256 = Some([0u8; 32]);
    assert!(matches!(
        t.put(r, body(&data, 500)).await,
        Err(Error::DigestMismatch)
    ));
    assert_eq!(
        t.list(&applicant("app-1"), None, 10)
            .await
            .unwrap()
            .documents
            .len(),
        1
    );
    let rep = f.vault.storage_report().await.unwrap();
    assert_eq!(
        (rep.committed, rep.pending, rep.orphan_blobs),
        (1, 0, 0),
        "{rep:?}"
    );
}

async fn size_limit_and_client_abort_store_nothing(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    let data = content(1, 5 * SEG);
    let mut r = req("app-1");
    r.max_size = Some(4 * SEG as u64);
    assert!(matches!(
        t.put(r.clone(), body(&data, 1000)).await,
        Err(Error::TooLarge)
    ));
    r.max_size = Some(5 * SEG as u64);
    t.put(r, body(&data, 1000)).await.unwrap();
    // A client that goes away mid-upload.
    let chunks = vec![
        Ok(Bytes::copy_from_slice(&data[..2 * SEG])),
        Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        ))),
    ];
    assert!(matches!(
        t.put(req("app-1"), stream::iter(chunks)).await,
        Err(Error::Io(_))
    ));
    let rep = f.vault.storage_report().await.unwrap();
    assert_eq!(
        (rep.committed, rep.pending, rep.orphan_blobs),
        (1, 0, 0),
        "{rep:?}"
    );
    assert_eq!(f.blob_files().len(), 1);
}

async fn range_reads(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    let len = 5 * SEG + 100;
    let data = content(3, len);
    let id = put(&t, "app-1", &data).await.id;
    let s = SEG as u64;
    for r in [
        0..1,
        0..s,
        s - 1..s + 1,
        s..2 * s,
        2 * s + 5..4 * s + 7,
        len as u64 - 1..len as u64,
        0..len as u64,
        7..7,
    ] {
        let d = t.get_range(id, r.clone()).await.unwrap();
        assert_eq!(d.range, r);
        assert_eq!(
            collect(d.body).await.unwrap(),
            &data[r.start as usize..r.end as usize],
            "{r:?}"
        );
    }
    let end = len as u64;
    assert!(matches!(
        t.get_range(id, 0..end + 1).await,
        Err(Error::RangeOutOfBounds)
    ));
    assert!(matches!(
        t.get_range(id, end + 1..end + 2).await,
        Err(Error::RangeOutOfBounds)
    ));
}

async fn tenant_isolation(f: Fixture) {
    let a = new_tenant(&f, "tenant-a").await;
    let b = new_tenant(&f, "tenant-b").await;
    let data = content(9, 2 * SEG);
    let doc = put(&a, "shared-applicant-id", &data).await;
    // Every operation of B on A's document is "not found".
    assert!(matches!(b.head(doc.id).await, Err(Error::NotFound)));
    assert!(matches!(b.get(doc.id).await, Err(Error::NotFound)));
    assert!(matches!(
        b.get_range(doc.id, 0..1).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(b.delete(doc.id).await, Err(Error::NotFound)));
    assert!(
        b.list(&applicant("shared-applicant-id"), None, 10)
            .await
            .unwrap()
            .documents
            .is_empty()
    );
    // Same for an id nobody has.
    let unknown = DocumentId::random();
    assert!(matches!(a.head(unknown).await, Err(Error::NotFound)));
    assert!(matches!(a.get(unknown).await, Err(Error::NotFound)));
    assert!(matches!(a.delete(unknown).await, Err(Error::NotFound)));
    // B's applicant with the same id is a different applicant with its own key.
    let bdoc = put(&b, "shared-applicant-id", &content(10, 100)).await;
    assert_eq!(
        b.list(&applicant("shared-applicant-id"), None, 10)
            .await
            .unwrap()
            .documents
            .len(),
        1
    );
    assert!(matches!(a.get(bdoc.id).await, Err(Error::NotFound)));
    // A's document is untouched by all of it.
    assert_eq!(read(&a, doc.id).await.unwrap(), data);
    // An unknown tenant has no handle at all.
    assert!(matches!(
        f.vault
            .tenant(TenantId::random(), vault_core::audit::Actor::operator())
            .await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        f.vault
            .create_tenant("tenant-a", &vault_core::audit::Actor::operator())
            .await,
        Err(Error::AlreadyExists)
    ));
}

async fn delete_removes_key_then_blob(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    let keep = put(&t, "app-1", &content(1, 100)).await;
    let gone = put(&t, "app-1", &content(2, 3 * SEG)).await;
    assert_eq!(f.blob_files().len(), 2);
    t.delete(gone.id).await.unwrap();
    assert!(matches!(t.get(gone.id).await, Err(Error::NotFound)));
    assert!(matches!(t.delete(gone.id).await, Err(Error::NotFound)));
    let pool = sql(&f).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE id = $1")
        .bind(gone.id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "the row, with its wrapped data key, is gone");
    assert_eq!(f.blob_files().len(), 1);
    assert_eq!(read(&t, keep.id).await.unwrap(), content(1, 100));
}

async fn swapped_blobs_and_rows_do_not_decrypt(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    let a = put(&t, "app-1", &content(1, 2 * SEG)).await;
    let b = put(&t, "app-2", &content(2, 2 * SEG)).await;
    let c = put(&t, "app-1", &content(3, 2 * SEG)).await;
    let pool = sql(&f).await;
    let blob_of = |id: DocumentId| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT blob_name FROM documents WHERE id = $1")
                .bind(id.to_string())
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let (ba, bb, bc) = (
        blob_of(a.id).await,
        blob_of(b.id).await,
        blob_of(c.id).await,
    );
    // 1. A's blob copied over B's object name (another applicant) and over
    //    C's (same applicant, another document).
    std::fs::copy(f.blob_dir.join(&ba), f.blob_dir.join(&bb)).unwrap();
    std::fs::copy(f.blob_dir.join(&ba), f.blob_dir.join(&bc)).unwrap();
    for id in [b.id, c.id] {
        let r = match t.get(id).await {
            Ok(d) => collect(d.body).await,
            Err(e) => Err(e),
        };
        assert!(matches!(r, Err(Error::Authentication)), "{r:?}");
    }
    // 2. A row edited to point at another document's blob.
    let d = put(&t, "app-1", &content(4, 2 * SEG)).await;
    let e = put(&t, "app-1", &content(5, 2 * SEG)).await;
    let (bd, be) = (blob_of(d.id).await, blob_of(e.id).await);
    // blob_name is unique, so swap the two through a placeholder.
    sqlx::query("UPDATE documents SET blob_name = 'x' WHERE id = $1")
        .bind(e.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE documents SET blob_name = $1 WHERE id = $2")
        .bind(&be)
        .bind(d.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE documents SET blob_name = $1 WHERE id = $2")
        .bind(&bd)
        .bind(e.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    for id in [d.id, e.id] {
        let r = match t.get(id).await {
            Ok(dl) => collect(dl.body).await,
            Err(err) => Err(err),
        };
        assert!(matches!(r, Err(Error::Authentication)), "{r:?}");
    }
    // 3. A row moved to another applicant (its wrapped key and context no
    //    longer match).
    let g = put(&t, "app-1", &content(6, 100)).await;
    put(&t, "app-9", &content(7, 10)).await;
    sqlx::query("UPDATE documents SET applicant_id = 'app-9' WHERE id = $1")
        .bind(g.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(t.get(g.id).await, Err(Error::Authentication)));
    // 4. A row relabelled with another category.
    let h = put(&t, "app-1", &content(8, 100)).await;
    sqlx::query("UPDATE documents SET category = 'lease' WHERE id = $1")
        .bind(h.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(t.get(h.id).await, Err(Error::Authentication)));
    // The untouched document still reads.
    assert_eq!(read(&t, a.id).await.unwrap(), content(1, 2 * SEG));
}

async fn tampered_or_truncated_blob_fails(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    let data = content(1, 4 * SEG);
    let doc = put(&t, "app-1", &data).await;
    let pool = sql(&f).await;
    let name: String = sqlx::query_scalar("SELECT blob_name FROM documents WHERE id = $1")
        .bind(doc.id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    let path = f.blob_dir.join(&name);
    let original = std::fs::read(&path).unwrap();
    // A flipped byte in segment 2: reads covering it fail, others succeed.
    let mut bad = original.clone();
    bad[(HEADER + 2 * FULL + 10) as usize] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(read(&t, doc.id).await, Err(Error::Authentication)));
    let s = SEG as u64;
    assert!(matches!(
        collect(t.get_range(doc.id, 2 * s..2 * s + 1).await.unwrap().body).await,
        Err(Error::Authentication)
    ));
    assert_eq!(
        collect(t.get_range(doc.id, 0..s).await.unwrap().body)
            .await
            .unwrap(),
        &data[..SEG]
    );
    // Cut at a segment boundary: the recorded length no longer matches.
    std::fs::write(&path, &original[..(HEADER + 2 * FULL) as usize]).unwrap();
    assert!(matches!(
        t.get(doc.id).await.map(|_| ()),
        Err(Error::Authentication)
    ));
    std::fs::write(&path, &original).unwrap();
    assert_eq!(read(&t, doc.id).await.unwrap(), data);
}

async fn object_names_and_stored_bytes_hold_no_personal_data(f: Fixture) {
    let t = new_tenant(&f, "Acme Leasing").await;
    let data = b"Name: Jane Doe; SSN 078-05-1120".repeat(200);
    let doc = put(&t, "jane-doe-1985", &data).await;
    for file in f.blob_files() {
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            uuid::Uuid::try_parse(&name).is_ok(),
            "object name {name} is not a bare UUID"
        );
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(8).any(|w| w == b"Jane Doe"),
            "plaintext in a blob"
        );
    }
    // The file name is stored encrypted.
    let pool = sql(&f).await;
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT file_name FROM documents WHERE id = $1")
        .bind(doc.id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!sealed.windows(8).any(|w| w == b"Jane Doe"));
    if f.kind == Kind::SqliteLocal {
        pool.close().await;
        f.vault.close().await;
        for entry in std::fs::read_dir(f.dir.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(8).any(|w| w == b"Jane Doe"),
                    "{} holds the file name or content",
                    p.display()
                );
            }
        }
    }
}

async fn concurrent_first_puts_share_one_applicant_key(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    let mut handles = vec![];
    for i in 0..8u64 {
        let t = t.clone();
        handles.push(tokio::spawn(async move {
            let data = content(i, 3000);
            let info = t
                .put(req("new-applicant"), body(&data, 1000))
                .await
                .unwrap();
            (info.id, data)
        }));
    }
    for h in handles {
        let (id, data) = h.await.unwrap();
        assert_eq!(read(&t, id).await.unwrap(), data);
    }
}

async fn sweep_removes_leftovers_and_never_a_live_document(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    let live = put(&t, "app-1", &content(1, 2 * SEG)).await;
    // An orphan blob (as if a delete crashed after its row went) and a stale
    // pending row with its blob (as if a put crashed before committing).
    let store: Arc<dyn ObjectStore> = match &f.kind {
        Kind::SqliteLocal => Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(f.blob_dir.parent().unwrap())
                .unwrap(),
        ),
        Kind::PostgresS3 => {
            let s3 = common::shared_s3();
            let bucket = f
                .blob_dir
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let c = s3.config(&bucket);
            Arc::new(
                object_store::aws::AmazonS3Builder::new()
                    .with_endpoint(c.endpoint.unwrap())
                    .with_bucket_name(c.bucket)
                    .with_region(c.region)
                    .with_access_key_id(c.access_key_id)
                    .with_secret_access_key(c.secret_access_key)
                    .with_allow_http(true)
                    .build()
                    .unwrap(),
            )
        }
    };
    let orphan = uuid::Uuid::new_v4().to_string();
    let pending_blob = uuid::Uuid::new_v4().to_string();
    for name in [&orphan, &pending_blob] {
        store
            .put_opts(
                &object_store::path::Path::from(format!("blobs/{name}")),
                Bytes::from_static(b"junk").into(),
                Default::default(),
            )
            .await
            .unwrap();
    }
    let pool = sql(&f).await;
    let pending_id = DocumentId::random();
    sqlx::query(
        "INSERT INTO documents (tenant_id, id, applicant_id, blob_name, state, category, content_type, header, wrapped_key, applicant_key_version, created_at) \
         VALUES ($1, $2, 'app-1', $3, 'pending', 'pay_stub', 'application/pdf', $4, $5, 1, 0)",
    )
    .bind(t.id().to_string())
    .bind(pending_id.to_string())
    .bind(&pending_blob)
    .bind(vec![0u8; 74])
    .bind(vec![1u8; 61])
    .execute(&pool)
    .await
    .unwrap();
    let before = f.vault.storage_report().await.unwrap();
    assert_eq!(
        (
            before.committed,
            before.pending,
            before.orphan_blobs,
            before.missing_blobs
        ),
        (1, 1, 1, 0)
    );
    // A long grace period spares the fresh orphan blob but not the
    // pending row created "at the epoch".
    let r = f
        .vault
        .sweep(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!((r.pending_rows, r.orphan_blobs), (1, 0));
    let r = f.vault.sweep(std::time::Duration::ZERO).await.unwrap();
    assert_eq!((r.pending_rows, r.orphan_blobs), (0, 1));
    let after = f.vault.storage_report().await.unwrap();
    assert_eq!(
        (
            after.committed,
            after.pending,
            after.orphan_blobs,
            after.missing_blobs
        ),
        (1, 0, 0, 0)
    );
    assert_eq!(read(&t, live.id).await.unwrap(), content(1, 2 * SEG));
    // Idempotent.
    assert_eq!(
        f.vault.sweep(std::time::Duration::ZERO).await.unwrap(),
        Default::default()
    );
}

async fn range_reads_fetch_only_covering_ciphertext(kind: Kind) {
    let state = ProbeState::new();
    let st = Arc::clone(&state);
    let wrap = move |cfg: BlobStoreConfig| -> BlobStoreConfig {
        let inner = common::raw_store(&cfg);
        BlobStoreConfig::Custom(Arc::new(Probe {
            inner,
            state: Arc::clone(&st),
        }))
    };
    let f = Fixture::with_blobs(kind, Some(&wrap)).await;
    let t = new_tenant(&f, "acme").await;
    let len = 20 * SEG + 33;
    let data = content(4, len);
    let id = put(&t, "app-1", &data).await.id;
    let total = HEADER + 20 * FULL + 33 + 16;
    let s = SEG as u64;
    for (range, expect) in [
        (0..1, HEADER..HEADER + FULL),
        (5 * s..5 * s + 1, HEADER + 5 * FULL..HEADER + 6 * FULL),
        (5 * s - 1..5 * s + 1, HEADER + 4 * FULL..HEADER + 6 * FULL),
        (len as u64 - 1..len as u64, HEADER + 20 * FULL..total),
        (0..len as u64, HEADER..total),
    ] {
        state.take_gets();
        let d = t.get_range(id, range.clone()).await.unwrap();
        assert_eq!(
            collect(d.body).await.unwrap(),
            &data[range.start as usize..range.end as usize]
        );
        assert_eq!(
            state.take_gets(),
            vec![Some(expect.clone())],
            "{kind:?} {range:?}"
        );
    }
    state.take_gets();
    drain(t.get(id).await.unwrap().body).await.unwrap();
    assert_eq!(
        state.take_gets(),
        vec![Some(HEADER..total)],
        "a whole read skips the header (the row holds it)"
    );
}

async fn blob_store_faults_leave_nothing(kind: Kind) {
    let state = ProbeState::new();
    let st = Arc::clone(&state);
    let wrap = move |cfg: BlobStoreConfig| -> BlobStoreConfig {
        let inner = common::raw_store(&cfg);
        BlobStoreConfig::Custom(Arc::new(Probe {
            inner,
            state: Arc::clone(&st),
        }))
    };
    let f = Fixture::with_blobs(kind, Some(&wrap)).await;
    let t = new_tenant(&f, "acme").await;
    let keep = put(&t, "app-1", &content(1, 100)).await;
    // A part upload fails (the disk fills) in the middle of a large document.
    let big = content(2, 20 << 20);
    state.parts_left.store(1, Ordering::SeqCst);
    let r = t.put(req("app-1"), body(&big, 1 << 20)).await;
    assert!(matches!(r, Err(Error::Storage(_))), "{r:?}");
    state.parts_left.store(-1, Ordering::SeqCst);
    // The final commit of the upload fails.
    state.fail_complete.store(true, Ordering::SeqCst);
    assert!(matches!(
        t.put(req("app-1"), body(&content(3, 1000), 100)).await,
        Err(Error::Storage(_))
    ));
    state.fail_complete.store(false, Ordering::SeqCst);
    // Reads fail cleanly while the store is down.
    state.fail_get.store(true, Ordering::SeqCst);
    assert!(matches!(
        t.get(keep.id).await.map(|_| ()),
        Err(Error::Storage(_))
    ));
    state.fail_get.store(false, Ordering::SeqCst);
    // Nothing half-written is listed, pending or orphaned.
    let docs = t
        .list(&applicant("app-1"), None, 100)
        .await
        .unwrap()
        .documents;
    assert_eq!(docs.iter().map(|d| d.id).collect::<Vec<_>>(), vec![keep.id]);
    let rep = f.vault.storage_report().await.unwrap();
    assert_eq!(
        (
            rep.committed,
            rep.pending,
            rep.orphan_blobs,
            rep.missing_blobs
        ),
        (1, 0, 0, 0),
        "{rep:?}"
    );
    f.vault.sweep(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(read(&t, keep.id).await.unwrap(), content(1, 100));
}

async fn database_fault_mid_upload_leaves_nothing_visible(f: Fixture) {
    let t = new_tenant(&f, "acme").await;
    let keep = put(&t, "app-1", &content(1, 100)).await;
    let pool = sql(&f).await;
    // The body's second chunk renames the documents table away, so the
    // commit at the end of the upload fails as a lost database would.
    let data = content(2, 3 * SEG);
    let pool2 = pool.clone();
    let chunks = stream::iter(vec![
        Bytes::copy_from_slice(&data[..SEG]),
        Bytes::copy_from_slice(&data[SEG..]),
    ])
    .enumerate()
    .then(move |(i, c)| {
        let pool = pool2.clone();
        async move {
            if i == 1 {
                sqlx::query("ALTER TABLE documents RENAME TO documents_away")
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            Ok(c)
        }
    });
    let r = t.put(req("app-1"), Box::pin(chunks)).await;
    assert!(matches!(r, Err(Error::Database(_))), "{r:?}");
    sqlx::query("ALTER TABLE documents_away RENAME TO documents")
        .execute(&pool)
        .await
        .unwrap();
    // The pending row could not be removed while the table was away; it is
    // invisible, and the sweep removes it and its blob.
    let docs = t
        .list(&applicant("app-1"), None, 100)
        .await
        .unwrap()
        .documents;
    assert_eq!(docs.len(), 1);
    let r = f.vault.sweep(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(r.pending_rows, 1);
    let rep = f.vault.storage_report().await.unwrap();
    assert_eq!(
        (rep.committed, rep.pending, rep.orphan_blobs),
        (1, 0, 0),
        "{rep:?}"
    );
    assert_eq!(read(&t, keep.id).await.unwrap(), content(1, 100));
}

/// The S3 server goes away mid-operation and comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_server_stopped_mid_upload() {
    let s3 = common::S3Server::start();
    let bucket = s3.bucket();
    let schema = common::new_pg_schema().await;
    let config = vault_core::vault::VaultConfig::new(
        BlobStoreConfig::S3(s3.config(&bucket)),
        common::pg_url_with_schema(&schema),
        common::key_provider(),
    );
    let vault = vault_core::vault::Vault::open(config).await.unwrap();
    let t = vault
        .tenant(
            vault
                .create_tenant("acme", &vault_core::audit::Actor::operator())
                .await
                .unwrap(),
            vault_core::audit::Actor::operator(),
        )
        .await
        .unwrap();
    let keep = put(&t, "app-1", &content(1, 1000)).await;
    // The server stops while the body is still arriving.
    let data = content(2, 12 << 20);
    let (first, rest) = data.split_at(9 << 20);
    let stop = Arc::new(std::sync::Mutex::new(Some(s3)));
    let stop2 = Arc::clone(&stop);
    let chunks = stream::iter(vec![
        Bytes::copy_from_slice(first),
        Bytes::copy_from_slice(rest),
    ])
    .enumerate()
    .map(move |(i, c)| {
        if i == 1 {
            stop2.lock().unwrap().as_mut().unwrap().stop();
        }
        Ok(c)
    });
    let r = t.put(req("app-1"), Box::pin(chunks)).await;
    assert!(matches!(r, Err(Error::Storage(_))), "{r:?}");
    // While it is down, reads fail with a typed error too.
    assert!(matches!(
        t.get(keep.id).await.map(|_| ()),
        Err(Error::Storage(_))
    ));
    // Back up: nothing half-written is visible, the sweep settles the rest.
    let mut s3 = stop.lock().unwrap().take().unwrap();
    s3.restart();
    let docs = t
        .list(&applicant("app-1"), None, 10)
        .await
        .unwrap()
        .documents;
    assert_eq!(docs.iter().map(|d| d.id).collect::<Vec<_>>(), vec![keep.id]);
    vault.sweep(std::time::Duration::ZERO).await.unwrap();
    let rep = vault.storage_report().await.unwrap();
    assert_eq!(
        (
            rep.committed,
            rep.pending,
            rep.orphan_blobs,
            rep.missing_blobs
        ),
        (1, 0, 0, 0),
        "{rep:?}"
    );
    assert_eq!(read(&t, keep.id).await.unwrap(), content(1, 1000));
}

// ---------------------------------------------------------------------------

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Fixture::new(super::Kind::SqliteLocal).await).await
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Fixture::new(super::Kind::PostgresS3).await).await
                }
            )*
        }
    };
}

macro_rules! suite_by_kind {
    ($($name:ident),* $(,)?) => {
        mod by_kind {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::SqliteLocal).await;
                    super::$name(super::Kind::PostgresS3).await;
                }
            )*
        }
    };
}

suite!(
    round_trip_at_segment_edges,
    digest_checked_and_wrong_digest_stores_nothing,
    size_limit_and_client_abort_store_nothing,
    range_reads,
    tenant_isolation,
    delete_removes_key_then_blob,
    swapped_blobs_and_rows_do_not_decrypt,
    tampered_or_truncated_blob_fails,
    object_names_and_stored_bytes_hold_no_personal_data,
    concurrent_first_puts_share_one_applicant_key,
    sweep_removes_leftovers_and_never_a_live_document,
    database_fault_mid_upload_leaves_nothing_visible,
);

suite_by_kind!(
    range_reads_fetch_only_covering_ciphertext,
    blob_store_faults_leave_nothing
);
