//! Purge, erasure and rotation rates at scale, on SQLite and PostgreSQL.
//!
//! Run: `cargo bench -p vault-core --bench lifecycle` (100,000 items; a few
//! minutes) or with `VAULT_BENCH_QUICK=1` (1,000 items, CI). Setup inserts
//! rows directly (one real upload per applicant provides valid headers and
//! wrapped keys) and writes real blob files, so what is timed is the vault's
//! own purge, erasure and rotation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sqlx::{AnyPool, Row};
use vault_core::audit::Actor;
use vault_core::category::Category;
use vault_core::ids::{ApplicantId, TenantId};
use vault_core::keys::{ApplicantKeyId, LocalKeyProvider, RootKeyVersion, wrap_applicant_key};
use vault_core::retention::RetentionPolicy;
use vault_core::secret::ApplicantKey;
use vault_core::store::BlobStoreConfig;
use vault_core::vault::{PutRequest, Vault, VaultConfig};

const K1: &str = "1:1111111111111111111111111111111111111111111111111111111111111111";
const K2: &str = "2:2222222222222222222222222222222222222222222222222222222222222222";

struct Db {
    name: &'static str,
    url: String,
    dir: tempfile::TempDir,
}

fn keys(text: &str) -> Arc<LocalKeyProvider> {
    Arc::new(LocalKeyProvider::parse(text).unwrap())
}

async fn open(db: &Db, k: &str) -> Vault {
    let config = VaultConfig::new(
        BlobStoreConfig::Local {
            dir: db.dir.path().join("blobs"),
        },
        db.url.clone(),
        keys(k),
    );
    Vault::open(config).await.unwrap()
}

fn one_doc() -> futures::stream::Iter<std::vec::IntoIter<vault_core::Result<Bytes>>> {
    futures::stream::iter(vec![Ok(Bytes::from_static(b"%PDF-1.7 tiny"))])
}

/// Inserts `n` committed documents spread over `applicants` (who each got
/// one real upload first), with real blob files.
async fn bulk_documents(db: &Db, tenant: TenantId, applicant_names: &[String], n: usize) {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&db.url).await.unwrap();
    let t = sqlx::query(
        "SELECT header, wrapped_key, applicant_key_version, plaintext_len, ciphertext_len FROM documents LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (header, wrapped, akv, plen, clen): (Vec<u8>, Vec<u8>, i64, i64, i64) =
        (t.get(0), t.get(1), t.get(2), t.get(3), t.get(4));
    let blob_dir = db.dir.path().join("blobs/blobs");
    std::fs::create_dir_all(&blob_dir).unwrap();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..n {
        let blob = uuid::Uuid::new_v4().to_string();
        std::fs::write(blob_dir.join(&blob), b"x").unwrap();
        sqlx::query(
            "INSERT INTO documents (tenant_id, id, applicant_id, blob_name, state, category, content_type, header, \
             wrapped_key, applicant_key_version, plaintext_len, ciphertext_len, created_at, committed_at) \
             VALUES ($1, $2, $3, $4, 'committed', $5, 'application/pdf', $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(tenant.to_string())
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&applicant_names[i % applicant_names.len()])
        .bind(&blob)
        .bind(Category::ALL[i % 7].as_str())
        .bind(header.clone())
        .bind(wrapped.clone())
        .bind(akv)
        .bind(plen)
        .bind(clen)
        .bind(i as i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
}

async fn purge_rate(db: &Db, n: usize) -> (f64, f64) {
    let v = open(db, K1).await;
    let tid = v.create_tenant("purge", &Actor::operator()).await.unwrap();
    let t = v.tenant(tid, Actor::operator()).await.unwrap();
    let names: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    for a in &names {
        t.put(
            PutRequest::new(
                ApplicantId::new(a).unwrap(),
                Category::PayStub,
                "application/pdf",
            ),
            one_doc(),
        )
        .await
        .unwrap();
    }
    bulk_documents(db, tid, &names, n).await;
    let mut zero = RetentionPolicy::default();
    for c in Category::ALL {
        zero.retain_days.insert(c, 0);
    }
    t.set_retention_policy(&zero).await.unwrap();
    for a in &names {
        t.close_application(&ApplicantId::new(a).unwrap(), Some(0))
            .await
            .unwrap();
    }
    let as_of = 1_000_000_000_000_000;
    let s = Instant::now();
    let dry = t.purge(as_of, true).await.unwrap();
    let dry_rate = dry.documents.len() as f64 / s.elapsed().as_secs_f64();
    let s = Instant::now();
    let real = t.purge(as_of, false).await.unwrap();
    let rate = real.documents.len() as f64 / s.elapsed().as_secs_f64();
    assert_eq!(real.documents.len(), n + names.len());
    v.close().await;
    (dry_rate, rate)
}

async fn erasure_times(db: &Db, n: usize) -> (f64, f64) {
    let v = open(db, K1).await;
    let tid = v.create_tenant("erase", &Actor::operator()).await.unwrap();
    let t = v.tenant(tid, Actor::operator()).await.unwrap();
    let name = "erase-me".to_string();
    t.put(
        PutRequest::new(
            ApplicantId::new(&name).unwrap(),
            Category::PayStub,
            "application/pdf",
        ),
        one_doc(),
    )
    .await
    .unwrap();
    bulk_documents(db, tid, std::slice::from_ref(&name), n - 1).await;
    let start = vault_core_now();
    let receipt = t
        .erase_applicant(&ApplicantId::new(&name).unwrap())
        .await
        .unwrap();
    assert_eq!(receipt.documents as usize, n);
    v.close().await;
    (
        (receipt.erased_at_ms - start) as f64,
        (receipt.completed_at_ms - start) as f64,
    )
}

fn vault_core_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn rotation_rate(db: &Db, n: usize) -> f64 {
    let v = open(db, K1).await;
    let tid = v.create_tenant("rotate", &Actor::operator()).await.unwrap();
    v.close().await;
    let provider = keys(K1);
    let pool = AnyPool::connect(&db.url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let v1 = RootKeyVersion::new(1).unwrap();
    for i in 0..n {
        let a = ApplicantId::new(&format!("r{i}")).unwrap();
        let id = ApplicantKeyId {
            tenant: tid,
            applicant: a.clone(),
            version: 1,
        };
        let w =
            wrap_applicant_key(&*provider, v1, &id, &ApplicantKey::generate().unwrap()).unwrap();
        sqlx::query(
            "INSERT INTO applicants (tenant_id, applicant_id, key_version, root_key_version, wrapped_key, created_at, last_activity_at) \
             VALUES ($1, $2, 1, 1, $3, 0, 0)",
        )
        .bind(tid.to_string())
        .bind(a.as_str())
        .bind(w.as_bytes().to_vec())
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
    let v = open(db, &format!("{K1}\n{K2}")).await;
    let s = Instant::now();
    let r = v.rotate_root_key(&Actor::operator()).await.unwrap();
    let rate = r.rewrapped as f64 / s.elapsed().as_secs_f64();
    assert!(r.rewrapped as usize >= n);
    v.close().await;
    rate
}

fn main() {
    let quick = std::env::var_os("VAULT_BENCH_QUICK").is_some();
    let n = if quick { 1_000 } else { 100_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/vault-bench");
    std::fs::create_dir_all(base).unwrap();
    let pg_url = std::env::var("VAULT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut rows = vec![];
    rt.block_on(async {
        for name in ["SQLite", "PostgreSQL"] {
            // A fresh database per measurement.
            let fresh = || async {
                let dir = tempfile::tempdir_in(base).unwrap();
                let url = if name == "SQLite" {
                    format!("sqlite://{}", dir.path().join("meta.db").display())
                } else {
                    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
                    let pool = sqlx::postgres::PgPool::connect(&pg_url).await.unwrap();
                    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
                    pool.close().await;
                    let sep = if pg_url.contains('?') { '&' } else { '?' };
                    format!("{pg_url}{sep}options=-c%20search_path%3D{schema}")
                };
                Db { name, url, dir }
            };
            let db = fresh().await;
            let (dry, real) = purge_rate(&db, n).await;
            rows.push(format!("| purge dry run, {n} due documents, {} | {dry:.0} docs/s |", db.name));
            rows.push(format!("| purge, {n} due documents (rows, keys, blobs, audit), {} | {real:.0} docs/s |", db.name));
            let db = fresh().await;
            let (unreadable, complete) = erasure_times(&db, 1000).await;
            rows.push(format!("| erasure of an applicant with 1,000 documents: until unreadable, {} | {unreadable:.0} ms |", db.name));
            rows.push(format!("| erasure of an applicant with 1,000 documents: until complete, {} | {complete:.0} ms |", db.name));
            let db = fresh().await;
            let rate = rotation_rate(&db, n).await;
            rows.push(format!("| root key rotation, {n} applicant keys, {} | {rate:.0} keys/s |", db.name));
        }
    });
    println!(
        "\n## Lifecycle benchmark{}\n",
        if quick {
            " (quick mode: small inputs)"
        } else {
            ""
        }
    );
    println!("One run each; local blob files on the same disk.\n");
    println!("| measurement | value |\n|---|---:|");
    for r in rows {
        println!("{r}");
    }
}
