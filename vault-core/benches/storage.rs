//! Vault put/get against the physical limit and an unencrypted store.
//!
//! Run: `cargo bench -p vault-core --bench storage` (full) or with
//! `VAULT_BENCH_QUICK=1` (tiny inputs, CI). Needs PostgreSQL at
//! `VAULT_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/test)
//! for the PostgreSQL rows; they are skipped, and say so, if it is not
//! reachable.
//!
//! Rows, each a median of interleaved rounds, with ratios per round:
//! - 64 MiB put and get through the vault on local files (fsync on) vs raw
//!   AES-256-GCM over the same bytes in memory, and vs a plain
//!   `object_store` multipart put / get of the same bytes on the same disk
//!   (fsync on, no encryption, no database);
//! - 200 KiB documents per second on SQLite and on PostgreSQL, with 1 and 8
//!   concurrent writers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use vault_core::category::Category;
use vault_core::ids::ApplicantId;
use vault_core::keys::LocalKeyProvider;
use vault_core::store::BlobStoreConfig;
use vault_core::vault::{PutRequest, Tenant, Vault, VaultConfig};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

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
    let keys = LocalKeyProvider::parse(&format!("1:{}", "cd".repeat(32))).unwrap();
    let config = VaultConfig::new(
        BlobStoreConfig::Local {
            dir: dir.join("blobs"),
        },
        metadata_url,
        Arc::new(keys),
    );
    Vault::open(config).await.unwrap()
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
    let quick = std::env::var_os("VAULT_BENCH_QUICK").is_some();
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
    type Row = (String, f64, &'static str, Option<(f64, String)>);
    let mut rows: Vec<Row> = vec![];

    rt.block_on(async {
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
        let (mut raw, mut vput, mut vget, mut pput, mut pget) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut fread, mut r_get_file) = (vec![], vec![]);
        let (mut r_put_raw, mut r_put_plain, mut r_get_raw, mut r_get_plain) =
            (vec![], vec![], vec![], vec![]);
        for round in 0..rounds {
            // Raw AES-256-GCM in memory: the physical limit.
            let s = Instant::now();
            let mut n = 0;
            while s.elapsed() < Duration::from_millis(if quick { 10 } else { 500 }) {
                raw_aes(&mut raw_buf);
                n += 1;
            }
            let raw_rate = (n * size) as f64 / s.elapsed().as_secs_f64();
            // Plain object_store put/get, same bytes, same disk, fsync on.
            let path = Path::from(format!("plain/{round}"));
            let s = Instant::now();
            let mut w = WriteMultipart::new_with_chunk_size(
                plain.put_multipart(&path).await.unwrap(),
                8 << 20,
            );
            let mut body = chunks(&data, 256 * 1024);
            while let Some(c) = body.next().await {
                w.wait_for_capacity(2).await.unwrap();
                w.put(c.unwrap());
            }
            w.finish().await.unwrap();
            let plain_put = size as f64 / s.elapsed().as_secs_f64();
            let s = Instant::now();
            let n: usize = plain
                .get(&path)
                .await
                .unwrap()
                .into_stream()
                .map_ok(|b| b.len())
                .try_fold(0, |a, b| async move { Ok(a + b) })
                .await
                .unwrap();
            assert_eq!(n, size);
            let plain_get = size as f64 / s.elapsed().as_secs_f64();
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
            let file_read = size as f64 / s.elapsed().as_secs_f64();
            plain.delete(&path).await.unwrap();
            // The vault.
            let s = Instant::now();
            let info = t
                .put(
                    PutRequest::new(
                        ApplicantId::new("big").unwrap(),
                        Category::BankStatement,
                        "application/pdf",
                    ),
                    chunks(&data, 256 * 1024),
                )
                .await
                .unwrap();
            let vault_put = size as f64 / s.elapsed().as_secs_f64();
            let s = Instant::now();
            let mut got = 0usize;
            let mut body = t.get(info.id).await.unwrap().body;
            while let Some(c) = body.next().await {
                got += c.unwrap().len();
            }
            assert_eq!(got, size);
            let vault_get = size as f64 / s.elapsed().as_secs_f64();
            t.delete(info.id).await.unwrap();
            raw.push(raw_rate);
            vput.push(vault_put);
            vget.push(vault_get);
            pput.push(plain_put);
            pget.push(plain_get);
            r_put_raw.push(vault_put / raw_rate);
            r_get_raw.push(vault_get / raw_rate);
            r_put_plain.push(vault_put / plain_put);
            r_get_plain.push(vault_get / plain_get);
            fread.push(file_read);
            r_get_file.push(vault_get / file_read);
        }
        let mib = size >> 20;
        rows.push((
            format!("raw AES-256-GCM aws-lc, {mib} MiB in memory"),
            median(raw) / 1e6,
            "MB/s",
            None,
        ));
        rows.push((
            format!("plain object_store put, {mib} MiB, local fsync"),
            median(pput) / 1e6,
            "MB/s",
            None,
        ));
        rows.push((
            format!("plain object_store get, {mib} MiB, local"),
            median(pget) / 1e6,
            "MB/s",
            None,
        ));
        rows.push((
            format!("vault put, {mib} MiB, SQLite + local fsync"),
            median(vput.clone()) / 1e6,
            "MB/s",
            Some((median(r_put_plain), "plain object_store put".into())),
        ));
        rows.push((
            format!("vault put, {mib} MiB (same run)"),
            median(vput) / 1e6,
            "MB/s",
            Some((median(r_put_raw), "raw AES-256-GCM".into())),
        ));
        rows.push((
            format!("plain file read, {mib} MiB, 1 MiB reads (cat)"),
            median(fread) / 1e6,
            "MB/s",
            None,
        ));
        rows.push((
            format!("vault get, {mib} MiB, SQLite + local"),
            median(vget.clone()) / 1e6,
            "MB/s",
            Some((median(r_get_file), "plain file read (cat)".into())),
        ));
        rows.push((
            format!("vault get, {mib} MiB (same run)"),
            median(vget.clone()) / 1e6,
            "MB/s",
            Some((
                median(r_get_plain),
                "plain object_store get (8 KiB reads)".into(),
            )),
        ));
        rows.push((
            format!("vault get, {mib} MiB (same run)"),
            median(vget) / 1e6,
            "MB/s",
            Some((median(r_get_raw), "raw AES-256-GCM".into())),
        ));

        // Small documents per second.
        let doc = Bytes::from(vec![0x42u8; 200 * 1024]);
        let pg_url = std::env::var("VAULT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
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
            "SQLite",
            format!("sqlite://{}", dir.path().join("small.db").display()),
        )];
        if pg.is_some() {
            let sep = if pg_url.contains('?') { '&' } else { '?' };
            dbs.push((
                "PostgreSQL",
                format!("{pg_url}{sep}options=-c%20search_path%3D{pg_schema}"),
            ));
        }
        for (name, url) in dbs {
            let sub = tempfile::tempdir_in(dir.path()).unwrap();
            let v = open_vault(sub.path(), url).await;
            let t = tenant(&v).await;
            for writers in [1usize, 8] {
                let mut rates = vec![];
                for _ in 0..rounds {
                    rates.push(small_docs_per_sec(&t, &doc, small_n, writers).await);
                }
                rows.push((
                    format!("200 KiB puts/s, {name} + local fsync, {writers} writer(s)"),
                    median(rates),
                    "docs/s",
                    None,
                ));
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

    println!(
        "\n## Storage benchmark{}\n",
        if quick {
            " (quick mode: tiny inputs, figures meaningless)"
        } else {
            ""
        }
    );
    println!(
        "Medians of {rounds} interleaved rounds; ratios are medians of per-round ratios. Disk: the file system of `{}`.\n",
        dir.path().display()
    );
    println!("| measurement | value | ratio | baseline |\n|---|---:|---:|---|");
    for (name, v, unit, ratio) in &rows {
        let (r, b) = ratio
            .as_ref()
            .map(|(x, b)| (format!("{x:.2}×"), b.as_str()))
            .unwrap_or((String::new(), ""));
        println!("| {name} | {v:.1} {unit} | {r} | {b} |");
    }
}
