//! A purge and a root key rotation killed (SIGKILL) at random points and
//! run again end in the same state as uninterrupted runs. SQLite + local
//! files, so the whole store can be copied and compared.
//!
//! `VAULT_RESUME_KILLS` sets the number of kills per operation (default 12).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{body, collect, content};
use vault_core::audit::Actor;
use vault_core::category::Category;
use vault_core::ids::{ApplicantId, DocumentId, TenantId};
use vault_core::keys::{FileKeyProvider, LocalKeyProvider, RootKeyVersion};
use vault_core::retention::RetentionPolicy;
use vault_core::store::BlobStoreConfig;
use vault_core::vault::{PutRequest, Vault, VaultConfig};

const KEY1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const KEY2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn write_keys(dir: &Path, entries: &str) {
    let p = dir.join("root.key");
    std::fs::write(&p, entries).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn config(dir: &Path) -> VaultConfig {
    let keys: Arc<LocalKeyProvider> =
        Arc::new(FileKeyProvider::load(&dir.join("root.key")).unwrap());
    VaultConfig::new(
        BlobStoreConfig::Local {
            dir: dir.join("blobs"),
        },
        format!("sqlite://{}", dir.join("meta.db").display()),
        keys,
    )
}

/// Waits until SQLite has checkpointed and removed its WAL after the last
/// connection closed, so a copy of the directory holds every commit.
fn wait_closed(dir: &Path) {
    let wal = dir.join("meta.db-wal");
    for _ in 0..500 {
        if !wal.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("SQLite did not close {}", dir.display());
}

fn blob_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("blobs/blobs"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The child: runs the operation named by `VAULT_RESUME_MODE` in
/// `VAULT_RESUME_DIR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_child() {
    let Some(dir) = std::env::var_os("VAULT_RESUME_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let config = match std::env::var("VAULT_RESUME_PG_SCHEMA") {
        Ok(schema) => pg_s3_config(
            &std::env::var("VAULT_RESUME_S3_ENDPOINT").unwrap(),
            &std::env::var("VAULT_RESUME_BUCKET").unwrap(),
            &schema,
        ),
        Err(_) => config(&dir),
    };
    let vault = Vault::open(config).await.unwrap();
    println!("READY");
    match std::env::var("VAULT_RESUME_MODE").unwrap().as_str() {
        "purge" => {
            let as_of: i64 = std::env::var("VAULT_RESUME_AS_OF")
                .unwrap()
                .parse()
                .unwrap();
            vault
                .purge_all(as_of, false, &Actor::operator())
                .await
                .unwrap();
        }
        "rotate" => {
            vault.rotate_root_key(&Actor::operator()).await.unwrap();
        }
        other => panic!("{other}"),
    }
    println!("DONE");
}

/// Runs the child in a copy of `prepared`, kills it after `delay`, and
/// returns the copy and whether the kill interrupted the operation.
fn killed_run(
    prepared: &Path,
    mode: &str,
    as_of: i64,
    delay: Duration,
) -> (tempfile::TempDir, bool) {
    let work = tempfile::tempdir().unwrap();
    wait_closed(prepared);
    common::copy_dir(prepared, work.path());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "resume_child",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("VAULT_RESUME_DIR", work.path())
        .env("VAULT_RESUME_MODE", mode)
        .env("VAULT_RESUME_AS_OF", as_of.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("READY") => break,
            Some(Ok(_)) => {}
            _ => panic!("child did not start"),
        }
    }
    std::thread::sleep(delay);
    child.kill().unwrap();
    child.wait().unwrap();
    let finished = lines.any(|l| l.is_ok_and(|l| l.contains("DONE")));
    (work, !finished)
}

fn kills() -> u64 {
    std::env::var("VAULT_RESUME_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn remaining(vault: &Vault, tenant: TenantId, applicants: usize) -> BTreeSet<DocumentId> {
    let t = vault.tenant(tenant, Actor::operator()).await.unwrap();
    let mut out = BTreeSet::new();
    for a in 0..applicants {
        let page = t
            .list(&ApplicantId::new(&format!("a{a}")).unwrap(), None, 1000)
            .await
            .unwrap();
        out.extend(page.documents.iter().map(|d| d.id));
    }
    out
}

#[test]
fn purge_killed_and_rerun_ends_like_an_uninterrupted_purge() {
    const APPLICANTS: usize = 30;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let prepared = tempfile::tempdir().unwrap();
    write_keys(prepared.path(), &format!("1:{KEY1}\n"));
    let (tenant, as_of) = rt.block_on(async {
        let v = Vault::open(config(prepared.path())).await.unwrap();
        let tid = v.create_tenant("acme", &Actor::operator()).await.unwrap();
        let t = v.tenant(tid, Actor::operator()).await.unwrap();
        let mut policy = RetentionPolicy::default();
        for c in Category::ALL {
            policy.retain_days.insert(c, 0);
        }
        t.set_retention_policy(&policy).await.unwrap();
        for i in 0..300u64 {
            let a = ApplicantId::new(&format!("a{}", i as usize % APPLICANTS)).unwrap();
            let req = PutRequest::new(a, Category::ALL[i as usize % 7], "application/pdf");
            let id = t.put(req, body(&content(i, 2000), 1000)).await.unwrap().id;
            if i % 10 == 0 {
                t.set_document_hold(id, true).await.unwrap();
            }
        }
        for a in 0..APPLICANTS {
            t.close_application(&ApplicantId::new(&format!("a{a}")).unwrap(), Some(0))
                .await
                .unwrap();
        }
        v.close().await;
        (tid, common_now() + 1000)
    });
    // The uninterrupted reference.
    let reference = tempfile::tempdir().unwrap();
    wait_closed(prepared.path());
    common::copy_dir(prepared.path(), reference.path());
    let (ref_docs, ref_blobs) = rt.block_on(async {
        let v = Vault::open(config(reference.path())).await.unwrap();
        let r = v.purge_all(as_of, false, &Actor::operator()).await.unwrap();
        assert_eq!(r[0].1.documents.len(), 270);
        assert_eq!(r[0].1.held, 30);
        let docs = remaining(&v, tenant, APPLICANTS).await;
        v.close().await;
        (docs, blob_names(reference.path()))
    });
    assert_eq!(ref_docs.len(), 30);
    let mut rng = Rng(0xfeed_f00d_1234_5678);
    let mut interrupted = 0;
    for _ in 0..kills() {
        let (work, cut) = killed_run(
            prepared.path(),
            "purge",
            as_of,
            Duration::from_micros(rng.next() % 120_000),
        );
        interrupted += u64::from(cut);
        rt.block_on(async {
            let v = Vault::open(config(work.path())).await.unwrap();
            v.purge_all(as_of, false, &Actor::operator()).await.unwrap();
            assert_eq!(remaining(&v, tenant, APPLICANTS).await, ref_docs);
            let rep = v.storage_report().await.unwrap();
            assert_eq!(
                (
                    rep.committed,
                    rep.pending,
                    rep.orphan_blobs,
                    rep.missing_blobs
                ),
                (30, 0, 0, 0),
                "{rep:?}"
            );
            assert!(v.verify_audit().await.unwrap().is_ok());
            v.close().await;
        });
        assert_eq!(blob_names(work.path()), ref_blobs, "the same blobs remain");
    }
    eprintln!("purge: {interrupted} of {} kills interrupted it", kills());
    assert!(
        interrupted >= 2.min(kills()),
        "too few kills landed inside the purge"
    );
}

fn common_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn rotation_killed_and_rerun_completes() {
    const APPLICANTS: usize = 600;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let prepared = tempfile::tempdir().unwrap();
    write_keys(prepared.path(), &format!("1:{KEY1}\n"));
    let (tenant, sample) = rt.block_on(async {
        let v = Vault::open(config(prepared.path())).await.unwrap();
        let tid = v.create_tenant("acme", &Actor::operator()).await.unwrap();
        let t = v.tenant(tid, Actor::operator()).await.unwrap();
        let mut sample = vec![];
        for i in 0..APPLICANTS {
            let a = ApplicantId::new(&format!("a{i}")).unwrap();
            let id = t
                .put(
                    PutRequest::new(a, Category::PayStub, "application/pdf"),
                    body(&content(i as u64, 64), 64),
                )
                .await
                .unwrap()
                .id;
            if i % 25 == 0 {
                sample.push((id, content(i as u64, 64)));
            }
        }
        v.close().await;
        (tid, sample)
    });
    // Version 2 is added to the key file; both are loaded during rotation.
    write_keys(prepared.path(), &format!("1:{KEY1}\n2:{KEY2}\n"));
    let blobs_before = blob_names(prepared.path());
    let mut rng = Rng(0x0dd_ba11_cafe_beef);
    let mut interrupted = 0;
    for _ in 0..kills() {
        let (work, cut) = killed_run(
            prepared.path(),
            "rotate",
            0,
            Duration::from_micros(rng.next() % 120_000),
        );
        interrupted += u64::from(cut);
        rt.block_on(async {
            let v = Vault::open(config(work.path())).await.unwrap();
            v.rotate_root_key(&Actor::operator()).await.unwrap();
            assert_eq!(
                v.root_key_usage(RootKeyVersion::new(1).unwrap())
                    .await
                    .unwrap(),
                0
            );
            v.close().await;
            // Version 1 retired: everything still opens with version 2 alone.
            write_keys(work.path(), &format!("2:{KEY2}\n"));
            let v = Vault::open(config(work.path())).await.unwrap();
            let t = v.tenant(tenant, Actor::operator()).await.unwrap();
            for (id, data) in &sample {
                assert_eq!(
                    &collect(t.get(*id).await.unwrap().body).await.unwrap(),
                    data
                );
            }
            assert!(v.verify_audit().await.unwrap().is_ok());
            v.close().await;
        });
        assert_eq!(
            blob_names(work.path()),
            blobs_before,
            "rotation re-encrypts no document"
        );
    }
    eprintln!(
        "rotation: {interrupted} of {} kills interrupted it",
        kills()
    );
    assert!(
        interrupted >= 2.min(kills()),
        "too few kills landed inside the rotation"
    );
}

fn pg_s3_config(endpoint: &str, bucket: &str, schema: &str) -> VaultConfig {
    let s3 = vault_core::store::S3Config {
        endpoint: Some(endpoint.into()),
        bucket: bucket.into(),
        region: "us-east-1".into(),
        access_key_id: common::S3_KEY.into(),
        secret_access_key: common::S3_SECRET.into(),
        allow_http: true,
    };
    VaultConfig::new(
        BlobStoreConfig::S3(s3),
        common::pg_url_with_schema(schema),
        Arc::new(LocalKeyProvider::parse(&format!("1:{KEY1}")).unwrap()),
    )
}

/// The same on PostgreSQL + S3: each round prepares a fresh schema and
/// bucket (so ids differ between rounds), kills the purging child, reruns
/// the purge, and checks the end state an uninterrupted purge reaches:
/// exactly the held documents remain, nothing is pending, queued or
/// orphaned, and the audit log verifies.
#[test]
fn purge_killed_and_rerun_on_postgres_s3() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = common::shared_s3();
    let mut rng = Rng(0xabad_cafe_0000_0001);
    let mut interrupted = 0;
    let rounds = kills().div_ceil(2);
    for _ in 0..rounds {
        let bucket = s3.bucket();
        let schema = rt.block_on(common::new_pg_schema());
        let cfg = pg_s3_config(&s3.endpoint, &bucket, &schema);
        let (tenant, held) = rt.block_on(async {
            let v = Vault::open(cfg.clone()).await.unwrap();
            let tid = v.create_tenant("acme", &Actor::operator()).await.unwrap();
            let t = v.tenant(tid, Actor::operator()).await.unwrap();
            let mut zero = RetentionPolicy::default();
            for c in Category::ALL {
                zero.retain_days.insert(c, 0);
            }
            t.set_retention_policy(&zero).await.unwrap();
            let mut held = BTreeSet::new();
            for i in 0..80u64 {
                let a = ApplicantId::new(&format!("a{}", i % 8)).unwrap();
                let req = PutRequest::new(a, Category::PayStub, "application/pdf");
                let id = t.put(req, body(&content(i, 500), 500)).await.unwrap().id;
                if i % 10 == 0 {
                    t.set_document_hold(id, true).await.unwrap();
                    held.insert(id);
                }
            }
            for a in 0..8 {
                t.close_application(&ApplicantId::new(&format!("a{a}")).unwrap(), Some(0))
                    .await
                    .unwrap();
            }
            v.close().await;
            (tid, held)
        });
        let as_of = common_now() + 1000;
        let marker = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "resume_child",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env("VAULT_RESUME_DIR", marker.path())
            .env("VAULT_RESUME_MODE", "purge")
            .env("VAULT_RESUME_AS_OF", as_of.to_string())
            .env("VAULT_RESUME_PG_SCHEMA", &schema)
            .env("VAULT_RESUME_S3_ENDPOINT", &s3.endpoint)
            .env("VAULT_RESUME_BUCKET", &bucket)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("READY") => break,
                Some(Ok(_)) => {}
                _ => panic!("child did not start"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 200_000));
        child.kill().unwrap();
        child.wait().unwrap();
        interrupted += u64::from(!lines.any(|l| l.is_ok_and(|l| l.contains("DONE"))));
        rt.block_on(async {
            let v = Vault::open(cfg).await.unwrap();
            v.purge_all(as_of, false, &Actor::operator()).await.unwrap();
            assert_eq!(remaining(&v, tenant, 8).await, held);
            let rep = v.storage_report().await.unwrap();
            assert_eq!(
                (
                    rep.committed,
                    rep.pending,
                    rep.orphan_blobs,
                    rep.missing_blobs
                ),
                (8, 0, 0, 0),
                "{rep:?}"
            );
            assert!(v.verify_audit().await.unwrap().is_ok());
            v.close().await;
        });
    }
    eprintln!("purge on PostgreSQL + S3: {interrupted} of {rounds} kills interrupted it");
    assert!(interrupted >= 1, "too few kills landed inside the purge");
}
