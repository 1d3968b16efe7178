//! Purge, erasure and rotation rates at scale, on SQLite and PostgreSQL.
//!
//! Run: `cargo bench -p vault-core --bench lifecycle` (100,000 items, three
//! rounds) or with `VAULT_BENCH_QUICK=1` (1,000 items, CI). Setup inserts
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

#[path = "../../benches/report.rs"]
mod report;
use report::Report;

const K1: &str = "1:1111111111111111111111111111111111111111111111111111111111111111";
const K2: &str = "2:2222222222222222222222222222222222222222222222222222222222222222";

struct Db {
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
    // Multi-row inserts, 500 rows a statement: setup is not what is timed.
    let mut tx = pool.begin().await.unwrap();
    for start in (0..n).step_by(500) {
        let rows: Vec<usize> = (start..(start + 500).min(n)).collect();
        let values: Vec<String> = (0..rows.len())
            .map(|k| {
                let p = |j: usize| format!("${}", k * 11 + j);
                format!(
                    "({}, {}, {}, {}, 'committed', {}, 'application/pdf', {}, {}, {}, {}, {}, {}, {})",
                    p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(9), p(10), p(11), p(11)
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO documents (tenant_id, id, applicant_id, blob_name, state, category, content_type, header, \
             wrapped_key, applicant_key_version, plaintext_len, ciphertext_len, created_at, committed_at) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for &i in &rows {
            let blob = uuid::Uuid::new_v4().to_string();
            std::fs::write(blob_dir.join(&blob), b"x").unwrap();
            q = q
                .bind(tenant.to_string())
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(applicant_names[i % applicant_names.len()].clone())
                .bind(blob)
                .bind(Category::ALL[i % 7].as_str())
                .bind(header.clone())
                .bind(wrapped.clone())
                .bind(akv)
                .bind(plen)
                .bind(clen)
                .bind(i as i64);
        }
        q.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
}

/// One real upload per applicant: it creates the applicant and its key.
async fn one_upload_each(t: &vault_core::vault::Tenant, names: &[String]) {
    for a in names {
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
}

async fn purge_rate(db: &Db, n: usize) -> (f64, f64) {
    let v = open(db, K1).await;
    let tid = v.create_tenant("purge", &Actor::operator()).await.unwrap();
    let t = v.tenant(tid, Actor::operator()).await.unwrap();
    let names: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    one_upload_each(&t, &names).await;
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

/// Erases one applicant in a vault holding `n` documents over 100
/// applicants; (ms until unreadable, ms until complete, their documents).
async fn erasure_times(db: &Db, n: usize) -> (f64, f64, usize) {
    let v = open(db, K1).await;
    let tid = v.create_tenant("erase", &Actor::operator()).await.unwrap();
    let t = v.tenant(tid, Actor::operator()).await.unwrap();
    let names: Vec<String> = std::iter::once("erase-me".to_string())
        .chain((1..100).map(|i| format!("o{i}")))
        .collect();
    one_upload_each(&t, &names).await;
    let bulk = n - names.len();
    bulk_documents(db, tid, &names, bulk).await;
    // bulk_documents gives document i to applicant i % 100: "erase-me" is 0.
    let theirs = 1 + bulk.div_ceil(names.len());
    let start = vault_core_now();
    let receipt = t
        .erase_applicant(&ApplicantId::new(&names[0]).unwrap())
        .await
        .unwrap();
    assert_eq!(receipt.documents as usize, theirs);
    v.close().await;
    (
        (receipt.erased_at_ms - start) as f64,
        (receipt.completed_at_ms - start) as f64,
        theirs,
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
    for start in (0..n).step_by(500) {
        let rows: Vec<usize> = (start..(start + 500).min(n)).collect();
        let values: Vec<String> = (0..rows.len())
            .map(|k| {
                format!(
                    "(${}, ${}, 1, 1, ${}, 0, 0)",
                    k * 3 + 1,
                    k * 3 + 2,
                    k * 3 + 3
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO applicants (tenant_id, applicant_id, key_version, root_key_version, wrapped_key, created_at, last_activity_at) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for &i in &rows {
            let a = ApplicantId::new(&format!("r{i}")).unwrap();
            let id = ApplicantKeyId {
                tenant: tid,
                applicant: a.clone(),
                version: 1,
            };
            let w = wrap_applicant_key(&*provider, v1, &id, &ApplicantKey::generate().unwrap())
                .unwrap();
            q = q
                .bind(tid.to_string())
                .bind(a.as_str().to_string())
                .bind(w.as_bytes().to_vec());
        }
        q.execute(&mut *tx).await.unwrap();
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
    let mut rep = Report::new("lifecycle");
    let quick = rep.quick();
    let n = if quick { 1_000 } else { 100_000 };
    let rounds = if quick { 1 } else { 3 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/vault-bench");
    std::fs::create_dir_all(base).unwrap();
    let pg_url = vault_e2e::postgres_url();
    rt.block_on(async {
        for (id, name) in [("sqlite", "SQLite"), ("postgres", "PostgreSQL")] {
            // A fresh database and blob directory per measurement.
            let fresh = || async {
                let dir = tempfile::tempdir_in(base).unwrap();
                let url = if id == "sqlite" {
                    format!("sqlite://{}", dir.path().join("meta.db").display())
                } else {
                    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
                    let pool = sqlx::postgres::PgPool::connect(&pg_url).await.unwrap();
                    sqlx::query(&format!("CREATE SCHEMA {schema}"))
                        .execute(&pool)
                        .await
                        .unwrap();
                    pool.close().await;
                    vault_e2e::pg_url_with_schema(&schema)
                };
                Db { url, dir }
            };
            let [mut dry, mut real, mut unreadable, mut complete, mut rotate] =
                [(); 5].map(|_| Vec::new());
            let mut theirs = 0;
            for _ in 0..rounds {
                let db = fresh().await;
                let (d, r) = purge_rate(&db, n).await;
                dry.push(d);
                real.push(r);
                drop_db(db).await;
                let db = fresh().await;
                let (u, c, k) = erasure_times(&db, n).await;
                unreadable.push(u);
                complete.push(c);
                theirs = k;
                drop_db(db).await;
                let db = fresh().await;
                rotate.push(rotation_rate(&db, n).await);
                drop_db(db).await;
            }
            rep.add(
                &format!("lifecycle.{id}.purge_dry_run"),
                &format!("purge dry run, {n} due documents, {name}"),
                "docs/s",
                &dry,
            );
            rep.add(
                &format!("lifecycle.{id}.purge"),
                &format!("purge, {n} due documents (rows, keys, blobs, audit), {name}"),
                "docs/s",
                &real,
            );
            rep.add(
                &format!("lifecycle.{id}.erase_unreadable"),
                &format!(
                    "erasure of an applicant with {theirs} of {n} documents: until unreadable, {name}"
                ),
                "ms",
                &unreadable,
            );
            rep.add(
                &format!("lifecycle.{id}.erase_complete"),
                &format!(
                    "erasure of an applicant with {theirs} of {n} documents: until complete, {name}"
                ),
                "ms",
                &complete,
            );
            rep.add(
                &format!("lifecycle.{id}.rotation"),
                &format!("root key rotation, {n} applicant keys, {name}"),
                "keys/s",
                &rotate,
            );
        }
    });
    rep.finish();
}

/// Removes a measurement's PostgreSQL schema (its directory goes on drop).
async fn drop_db(db: Db) {
    if let Some(schema) = db.url.split("search_path%3D").nth(1) {
        let pool = sqlx::postgres::PgPool::connect(&vault_e2e::postgres_url())
            .await
            .unwrap();
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}
