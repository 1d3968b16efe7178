//! Vault put/get against the physical limit and an unencrypted store.
//!
//! Run: `cargo bench -p vault-core --bench storage` (full) or with
//! `VAULT_BENCH_QUICK=1` (tiny inputs, CI). Needs PostgreSQL at
//! `VAULT_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/test)
//! for the PostgreSQL rows; they are skipped, and say so, if it is not
//! reachable.
//!
//! Rows, each a median of interleaved rounds, with ratios per round:
//! - 64 MiB put and get through the vault on local files (fsync on) and on
//!   a real S3-compatible server (s3s-fs on loopback), each against a plain
//!   `object_store` multipart put / get of the same bytes on the same store
//!   (no encryption, no database, no audit); on local files also against
//!   raw AES-256-GCM in memory and a plain 1 MiB-read of the file (`cat`);
//! - a 1-byte ranged read at several offsets of a 1 GiB document against
//!   the same read at the end of a 1 MiB document (each through the whole
//!   vault: metadata lookup, key unwrap, audit record, one segment);
//! - 200 KiB documents per second on SQLite and on PostgreSQL, with 1 and 8
//!   concurrent writers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use vault_core::category::Category;
use vault_core::ids::{ApplicantId, DocumentId};
use vault_core::keys::LocalKeyProvider;
use vault_core::store::{BlobStoreConfig, S3Config};
use vault_core::vault::{PutRequest, Tenant, Vault, VaultConfig};

#[path = "../../benches/report.rs"]
mod report;
use report::Report;

fn chunks(
    data: &Bytes,
    size: usize,
) -> impl futures::Stream<Item = vault_core::Result<Bytes>> + Send + Unpin + use<> {
    let data = data.clone();
    let n = data.len().div_ceil(size);
    futures::stream::iter(
        (0..n).map(move |i| Ok(data.slice(i * size..((i + 1) * size).min(data.len())))),
    )
}

fn raw_aes(buf: &mut [u8]) {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[3u8; 32]).unwrap());
    for (i, c) in buf.chunks_mut(64 * 1024).enumerate() {
        let mut n = [0u8; 12];
        n[8..].copy_from_slice(&(i as u32).to_be_bytes());
        let _ = std::hint::black_box(
            k.seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), c)
                .unwrap(),
        );
    }
}

async fn open_vault(dir: &std::path::Path, metadata_url: String) -> Vault {
    open_vault_on(
        BlobStoreConfig::Local {
            dir: dir.join("blobs"),
        },
        metadata_url,
    )
    .await
}

async fn open_vault_on(blobs: BlobStoreConfig, metadata_url: String) -> Vault {
    let keys = LocalKeyProvider::parse(&format!("1:{}", "cd".repeat(32))).unwrap();
    Vault::open(VaultConfig::new(blobs, metadata_url, Arc::new(keys)))
        .await
        .unwrap()
}

fn s3_config(server: &vault_e2e::S3Server) -> S3Config {
    S3Config {
        endpoint: Some(server.endpoint.clone()),
        bucket: server.bucket(),
        region: "us-east-1".into(),
        access_key_id: vault_e2e::S3_KEY.into(),
        secret_access_key: vault_e2e::S3_SECRET.into(),
        allow_http: true,
    }
}

fn plain_s3(c: &S3Config) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_bucket_name(&c.bucket)
        .with_region(&c.region)
        .with_access_key_id(&c.access_key_id)
        .with_secret_access_key(&c.secret_access_key)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_endpoint(c.endpoint.as_deref().unwrap())
        .build()
        .unwrap()
}

fn secs_to_rate(bytes: usize, s: Instant) -> f64 {
    bytes as f64 / s.elapsed().as_secs_f64() / 1e6
}

/// Plain `object_store` multipart put of `data`, 8 MiB parts (as the vault
/// uses), in MB/s.
async fn plain_put(store: &dyn ObjectStore, path: &Path, data: &Bytes) -> f64 {
    let s = Instant::now();
    let mut w =
        WriteMultipart::new_with_chunk_size(store.put_multipart(path).await.unwrap(), 8 << 20);
    let mut body = chunks(data, 256 * 1024);
    while let Some(c) = body.next().await {
        w.wait_for_capacity(2).await.unwrap();
        w.put(c.unwrap());
    }
    w.finish().await.unwrap();
    secs_to_rate(data.len(), s)
}

/// Plain `object_store` get of the whole object, in MB/s.
async fn plain_get(store: &dyn ObjectStore, path: &Path, size: usize) -> f64 {
    let s = Instant::now();
    let n: usize = store
        .get(path)
        .await
        .unwrap()
        .into_stream()
        .map_ok(|b| b.len())
        .try_fold(0, |a, b| async move { Ok(a + b) })
        .await
        .unwrap();
    assert_eq!(n, size);
    secs_to_rate(size, s)
}

/// Vault put then get of `data`; (put MB/s, get MB/s). Deletes it again.
async fn vault_put_get(t: &Tenant, data: &Bytes) -> (f64, f64) {
    let s = Instant::now();
    let info = t
        .put(
            PutRequest::new(
                ApplicantId::new("big").unwrap(),
                Category::BankStatement,
                "application/pdf",
            ),
            chunks(data, 256 * 1024),
        )
        .await
        .unwrap();
    let put = secs_to_rate(data.len(), s);
    let s = Instant::now();
    let mut got = 0usize;
    let mut body = t.get(info.id).await.unwrap().body;
    while let Some(c) = body.next().await {
        got += c.unwrap().len();
    }
    assert_eq!(got, data.len());
    let get = secs_to_rate(data.len(), s);
    t.delete(info.id).await.unwrap();
    (put, get)
}

/// Mean seconds of a 1-byte ranged read at `offset` (through the vault),
/// over `n` reads.
async fn range_latency(t: &Tenant, id: DocumentId, offset: u64, n: usize) -> f64 {
    let s = Instant::now();
    for _ in 0..n {
        let mut body = t.get_range(id, offset..offset + 1).await.unwrap().body;
        let mut got = 0;
        while let Some(c) = body.next().await {
            got += c.unwrap().len();
        }
        assert_eq!(got, 1);
    }
    s.elapsed().as_secs_f64() / n as f64
}

async fn tenant(v: &Vault) -> Tenant {
    let name = format!("bench-{}", uuid::Uuid::new_v4());
    v.tenant(
        v.create_tenant(&name, &vault_core::audit::Actor::operator())
            .await
            .unwrap(),
        vault_core::audit::Actor::operator(),
    )
    .await
    .unwrap()
}

async fn small_docs_per_sec(t: &Tenant, doc: &Bytes, total: usize, writers: usize) -> f64 {
    let start = Instant::now();
    let per = total / writers;
    let mut tasks = vec![];
    for w in 0..writers {
        let t = t.clone();
        let doc = doc.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let req = PutRequest::new(
                    ApplicantId::new(&format!("a{}", (w * per + i) % 50)).unwrap(),
                    Category::PayStub,
                    "application/pdf",
                );
                t.put(req, chunks(&doc, 64 * 1024)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (per * writers) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mut rep = Report::new("storage");
    let quick = rep.quick();
    let rounds = if quick { 1 } else { 3 };
    let size = if quick { 4 << 20 } else { 64 << 20 };
    let small_n = if quick { 16 } else { 400 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = std::env::var("VAULT_BENCH_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/vault-bench").into());
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(base).unwrap();
    let data = Bytes::from((0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
    let mib = size >> 20;

    rt.block_on(async {
        // 1. Local files + SQLite, against raw AES, plain object_store and cat.
        let vault = open_vault(
            dir.path(),
            format!("sqlite://{}", dir.path().join("meta.db").display()),
        )
        .await;
        let t = tenant(&vault).await;
        let plain = LocalFileSystem::new_with_prefix(dir.path())
            .unwrap()
            .with_fsync(true);
        let mut raw_buf = data.to_vec();
        let [mut raw, mut vput, mut vget, mut pput, mut pget, mut fread] =
            [(); 6].map(|_| Vec::new());
        let [
            mut r_put_plain,
            mut r_get_plain,
            mut r_get_file,
            mut r_put_raw,
        ] = [(); 4].map(|_| Vec::new());
        for round in 0..rounds {
            // Raw AES-256-GCM in memory: the physical limit.
            let s = Instant::now();
            let mut n = 0;
            while s.elapsed() < Duration::from_millis(if quick { 10 } else { 500 }) {
                raw_aes(&mut raw_buf);
                n += 1;
            }
            let raw_rate = (n * size) as f64 / s.elapsed().as_secs_f64() / 1e6;
            // Plain object_store put/get, same bytes, same disk, fsync on.
            let path = Path::from(format!("plain/{round}"));
            let p_put = plain_put(&plain, &path, &data).await;
            let p_get = plain_get(&plain, &path, size).await;
            // The same file read with 1 MiB reads, as `cat` would.
            let file_path = dir.path().join("plain").join(round.to_string());
            let s = Instant::now();
            let mut f = std::fs::File::open(&file_path).unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0;
            loop {
                let k = std::io::Read::read(&mut f, &mut buf).unwrap();
                if k == 0 {
                    break;
                }
                n += k;
            }
            assert_eq!(n, size);
            let file_read = secs_to_rate(size, s);
            plain.delete(&path).await.unwrap();
            let (v_put, v_get) = vault_put_get(&t, &data).await;
            raw.push(raw_rate);
            pput.push(p_put);
            pget.push(p_get);
            fread.push(file_read);
            vput.push(v_put);
            vget.push(v_get);
            r_put_plain.push(v_put / p_put);
            r_get_plain.push(v_get / p_get);
            r_get_file.push(v_get / file_read);
            r_put_raw.push(v_put / raw_rate);
        }
        rep.add(
            "storage.raw_aes",
            &format!("raw AES-256-GCM aws-lc, {mib} MiB in memory"),
            "MB/s",
            &raw,
        );
        rep.add(
            "storage.local.plain_put",
            &format!("plain object_store put, {mib} MiB, local files, fsync"),
            "MB/s",
            &pput,
        );
        rep.add_vs(
            "storage.local.vault_put",
            &format!("vault put, {mib} MiB, local files + SQLite"),
            "MB/s",
            &vput,
            "storage.local.plain_put",
            &r_put_plain,
        );
        rep.add_vs(
            "storage.local.vault_put_vs_aes",
            &format!("vault put, {mib} MiB, local files + SQLite (same runs)"),
            "MB/s",
            &vput,
            "storage.raw_aes",
            &r_put_raw,
        );
        rep.add(
            "storage.local.plain_get",
            &format!("plain object_store get, {mib} MiB, local files"),
            "MB/s",
            &pget,
        );
        rep.add_vs(
            "storage.local.vault_get",
            &format!("vault get, {mib} MiB, local files + SQLite"),
            "MB/s",
            &vget,
            "storage.local.plain_get",
            &r_get_plain,
        );
        rep.add(
            "storage.local.file_read",
            &format!("plain file read, {mib} MiB, 1 MiB reads (cat)"),
            "MB/s",
            &fread,
        );
        rep.add_vs(
            "storage.local.vault_get_vs_cat",
            &format!("vault get, {mib} MiB, local files + SQLite (same runs)"),
            "MB/s",
            &vget,
            "storage.local.file_read",
            &r_get_file,
        );

        // 2. The S3-compatible server (s3s-fs on loopback) + SQLite.
        let s3 = vault_e2e::S3Server::start();
        let vault_cfg = s3_config(&s3);
        let s3_vault = open_vault_on(
            BlobStoreConfig::S3(vault_cfg),
            format!("sqlite://{}", dir.path().join("s3meta.db").display()),
        )
        .await;
        let s3_tenant = tenant(&s3_vault).await;
        let plain = plain_s3(&s3_config(&s3));
        let [mut pput, mut pget, mut vput, mut vget, mut rp, mut rg] = [(); 6].map(|_| Vec::new());
        for round in 0..rounds {
            let path = Path::from(format!("plain/{round}"));
            let p_put = plain_put(&plain, &path, &data).await;
            let p_get = plain_get(&plain, &path, size).await;
            plain.delete(&path).await.unwrap();
            let (v_put, v_get) = vault_put_get(&s3_tenant, &data).await;
            pput.push(p_put);
            pget.push(p_get);
            vput.push(v_put);
            vget.push(v_get);
            rp.push(v_put / p_put);
            rg.push(v_get / p_get);
        }
        rep.add(
            "storage.s3.plain_put",
            &format!("plain object_store put, {mib} MiB, S3 (s3s-fs)"),
            "MB/s",
            &pput,
        );
        rep.add_vs(
            "storage.s3.vault_put",
            &format!("vault put, {mib} MiB, S3 (s3s-fs) + SQLite"),
            "MB/s",
            &vput,
            "storage.s3.plain_put",
            &rp,
        );
        rep.add(
            "storage.s3.plain_get",
            &format!("plain object_store get, {mib} MiB, S3 (s3s-fs)"),
            "MB/s",
            &pget,
        );
        rep.add_vs(
            "storage.s3.vault_get",
            &format!("vault get, {mib} MiB, S3 (s3s-fs) + SQLite"),
            "MB/s",
            &vget,
            "storage.s3.plain_get",
            &rg,
        );
        s3_vault.close().await;
        drop(s3);

        // 3. Ranged reads through the vault: a 1-byte read at several offsets
        //    of a big document against the end of a 1 MiB document.
        {
            let big_len: usize = if quick { 8 << 20 } else { 1 << 30 };
            let reads = if quick { 5 } else { 50 };
            let put = |len: usize| {
                let t = t.clone();
                async move {
                    // Generated 1 MiB at a time: a 1 GiB document is never
                    // held in memory.
                    let piece = Bytes::from(vec![0x5au8; 1 << 20]);
                    let n = len.div_ceil(1 << 20);
                    let body = futures::stream::iter(
                        (0..n).map(move |i| Ok(piece.slice(..(len - i * (1 << 20)).min(1 << 20)))),
                    );
                    t.put(
                        PutRequest::new(
                            ApplicantId::new("ranges").unwrap(),
                            Category::BankStatement,
                            "application/pdf",
                        ),
                        body,
                    )
                    .await
                    .unwrap()
                    .id
                }
            };
            let big = put(big_len).await;
            let small = put(1 << 20).await;
            let big_mib = big_len >> 20;
            let offsets: Vec<(String, u64)> = vec![
                ("start".into(), 0),
                ("middle".into(), big_len as u64 / 2),
                ("end".into(), big_len as u64 - 1),
            ];
            let mut small_runs = vec![];
            let mut per: Vec<(Vec<f64>, Vec<f64>)> = vec![(vec![], vec![]); offsets.len()];
            for _ in 0..rounds {
                let s = range_latency(&t, small, (1 << 20) - 1, reads).await;
                small_runs.push(s * 1e3);
                for (k, (_, off)) in offsets.iter().enumerate() {
                    let b = range_latency(&t, big, *off, reads).await;
                    per[k].0.push(b * 1e3);
                    per[k].1.push(b / s);
                }
            }
            rep.add(
                "storage.range.small_end",
                "vault 1-byte range, end of a 1 MiB document",
                "ms",
                &small_runs,
            );
            for ((label, off), (runs, ratios)) in offsets.iter().zip(per) {
                rep.add_vs(
                    &format!("storage.range.big_{label}"),
                    &format!("vault 1-byte range at offset {off} of a {big_mib} MiB document"),
                    "ms",
                    &runs,
                    "storage.range.small_end",
                    &ratios,
                );
            }
            t.delete(big).await.unwrap();
            t.delete(small).await.unwrap();
        }
        vault.close().await;

        // 4. Small documents per second.
        let doc = Bytes::from(vec![0x42u8; 200 * 1024]);
        let pg_url = vault_e2e::postgres_url();
        let pg_schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let pg = match sqlx::postgres::PgPool::connect(&pg_url).await {
            Ok(pool) => {
                sqlx::query(&format!("CREATE SCHEMA {pg_schema}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                Some(pool)
            }
            Err(e) => {
                eprintln!("PostgreSQL rows skipped: {e}");
                None
            }
        };
        let mut dbs = vec![(
            "sqlite",
            "SQLite",
            format!("sqlite://{}", dir.path().join("small.db").display()),
        )];
        if pg.is_some() {
            dbs.push((
                "postgres",
                "PostgreSQL",
                vault_e2e::pg_url_with_schema(&pg_schema),
            ));
        }
        for (id, name, url) in dbs {
            let sub = tempfile::tempdir_in(dir.path()).unwrap();
            let v = open_vault(sub.path(), url).await;
            let t = tenant(&v).await;
            for writers in [1usize, 8] {
                let mut rates = vec![];
                for _ in 0..rounds {
                    rates.push(small_docs_per_sec(&t, &doc, small_n, writers).await);
                }
                rep.add(
                    &format!("storage.small.{id}.{writers}"),
                    &format!("200 KiB puts, {name} + local files, {writers} writer(s)"),
                    "docs/s",
                    &rates,
                );
            }
            v.close().await;
        }
        if let Some(pool) = pg {
            sqlx::query(&format!("DROP SCHEMA {pg_schema} CASCADE"))
                .execute(&pool)
                .await
                .unwrap();
        }
    });
    rep.finish();
}
