//! Retention, purge, legal hold, erasure, export, rotation and the audit
//! log, on SQLite + local files and on PostgreSQL + a real S3-compatible
//! server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;

use common::{Fixture, Kind, body, collect, content};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sqlx::AnyPool;
use vault_core::Error;
use vault_core::audit::{Actor, AuditProblem};
use vault_core::category::Category;
use vault_core::ids::{ApplicantId, DocumentId};
use vault_core::keys::{LocalKeyProvider, RootKeyVersion};
use vault_core::retention::{DAY_MS, RetentionPolicy};
use vault_core::secret::RootKey;
use vault_core::vault::{PutRequest, Tenant};

fn app(s: &str) -> ApplicantId {
    ApplicantId::new(s).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn tenant(f: &Fixture, name: &str) -> Tenant {
    let id = f
        .vault
        .create_tenant(name, &Actor::operator())
        .await
        .unwrap();
    f.vault
        .tenant(id, Actor::new("api-key:test-admin").unwrap())
        .await
        .unwrap()
}

async fn put(t: &Tenant, a: &str, cat: Category, data: &[u8], name: &str) -> DocumentId {
    let mut r = PutRequest::new(app(a), cat, "application/pdf");
    r.file_name = Some(name.into());
    t.put(r, body(data, 700)).await.unwrap().id
}

async fn sql(f: &Fixture) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(&f.metadata_url).await.unwrap()
}

async fn set_last_activity(pool: &AnyPool, a: &str, at: i64) {
    sqlx::query("UPDATE applicants SET last_activity_at = $1 WHERE applicant_id = $2")
        .bind(at)
        .bind(a)
        .execute(pool)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// Purge against a reference model

#[derive(Clone, Debug)]
struct ApplicantSpec {
    closed_days_ago: Option<i64>,
    idle_days: i64,
    hold: bool,
}

#[derive(Clone, Debug)]
struct Scenario {
    applicants: Vec<ApplicantSpec>,
    docs: Vec<(usize, usize, bool)>,
    inactivity_days: u32,
    retain: Vec<u32>,
    as_of_days: i64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let applicant = (
        proptest::option::of(0i64..60),
        0i64..40,
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(closed_days_ago, idle_days, hold)| ApplicantSpec {
            closed_days_ago,
            idle_days,
            hold,
        });
    (
        proptest::collection::vec(applicant, 1..5),
        proptest::collection::vec(
            (0usize..5, 0usize..7, proptest::bool::weighted(0.15)),
            1..14,
        ),
        1u32..30,
        proptest::collection::vec(0u32..50, 7),
        0i64..60,
    )
        .prop_map(
            |(applicants, docs, inactivity_days, retain, as_of_days)| Scenario {
                docs: docs
                    .into_iter()
                    .map(|(a, c, h)| (a % applicants.len(), c, h))
                    .collect(),
                applicants,
                inactivity_days,
                retain,
                as_of_days,
            },
        )
}

/// The rule, written independently of the vault's: a document is due when
/// its application closed (explicitly, or `inactivity` days after its last
/// activity, if that moment has passed) and `retain` days have passed since,
/// and neither it nor its applicant is on hold.
fn model_due(sc: &Scenario, base: i64, as_of: i64, doc: usize) -> bool {
    let (a, c, doc_hold) = sc.docs[doc];
    let spec = &sc.applicants[a];
    if doc_hold || spec.hold {
        return false;
    }
    let close = match spec.closed_days_ago {
        Some(d) => Some(base - d * DAY_MS),
        None => {
            let inactive = base - spec.idle_days * DAY_MS + i64::from(sc.inactivity_days) * DAY_MS;
            (inactive <= as_of).then_some(inactive)
        }
    };
    close.is_some_and(|closed| closed + i64::from(sc.retain[c]) * DAY_MS <= as_of)
}

async fn run_scenario(kind: Kind, sc: Scenario) {
    let f = Fixture::new(kind).await;
    let t = tenant(&f, "acme").await;
    let pool = sql(&f).await;
    let mut policy = RetentionPolicy {
        inactivity_days: sc.inactivity_days,
        ..Default::default()
    };
    for (i, c) in Category::ALL.into_iter().enumerate() {
        policy.retain_days.insert(c, sc.retain[i]);
    }
    t.set_retention_policy(&policy).await.unwrap();
    let mut ids = vec![];
    for (i, &(a, c, _)) in sc.docs.iter().enumerate() {
        ids.push(
            put(
                &t,
                &format!("a{a}"),
                Category::ALL[c],
                &content(i as u64, 100),
                "x.pdf",
            )
            .await,
        );
    }
    let base = now();
    for (i, spec) in sc.applicants.iter().enumerate() {
        let name = format!("a{i}");
        if !sc.docs.iter().any(|d| d.0 == i) {
            continue;
        }
        if let Some(d) = spec.closed_days_ago {
            t.close_application(&app(&name), Some(base - d * DAY_MS))
                .await
                .unwrap();
        }
        set_last_activity(&pool, &name, base - spec.idle_days * DAY_MS).await;
        if spec.hold {
            t.set_applicant_hold(&app(&name), true).await.unwrap();
        }
    }
    for (i, &(_, _, hold)) in sc.docs.iter().enumerate() {
        if hold {
            t.set_document_hold(ids[i], true).await.unwrap();
        }
    }
    let as_of = base + sc.as_of_days * DAY_MS;
    let expected: BTreeSet<DocumentId> = (0..ids.len())
        .filter(|&i| model_due(&sc, base, as_of, i))
        .map(|i| ids[i])
        .collect();
    let dry = t.purge(as_of, true).await.unwrap();
    assert_eq!(
        dry.documents.iter().copied().collect::<BTreeSet<_>>(),
        expected,
        "dry run vs model: {sc:?}"
    );
    let mut by_cat = BTreeMap::new();
    for (id, doc) in ids.iter().zip(&sc.docs) {
        if expected.contains(id) {
            *by_cat.entry(Category::ALL[doc.1]).or_insert(0u64) += 1;
        }
    }
    assert_eq!(dry.by_category, by_cat);
    // Nothing changed on the dry run.
    for id in &ids {
        t.head(*id).await.unwrap();
    }
    PURGED.fetch_add(expected.len() as u64, std::sync::atomic::Ordering::SeqCst);
    HELD.fetch_add(dry.held, std::sync::atomic::Ordering::SeqCst);
    let real = t.purge(as_of, false).await.unwrap();
    assert_eq!(
        real.documents, dry.documents,
        "the real run removes exactly what the dry run listed"
    );
    for (i, id) in ids.iter().enumerate() {
        let r = t.head(*id).await;
        if expected.contains(id) {
            assert!(matches!(r, Err(Error::NotFound)), "{id} should be gone");
        } else {
            r.unwrap_or_else(|e| panic!("doc {i} {id} was purged but not due: {e}; {sc:?}"));
        }
    }
    let again = t.purge(as_of, false).await.unwrap();
    assert!(again.documents.is_empty(), "a second run removes nothing");
    let rep = f.vault.storage_report().await.unwrap();
    assert_eq!(
        (rep.pending, rep.orphan_blobs, rep.missing_blobs),
        (0, 0, 0),
        "{rep:?}"
    );
    assert_eq!(rep.committed as usize, ids.len() - expected.len());
}

static PURGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static HELD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn purge_property(kind: Kind) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 10,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&scenario(), |sc| {
            rt.block_on(run_scenario(kind, sc));
            Ok(())
        })
        .unwrap();
    // The generated cases exercised both outcomes.
    assert!(
        PURGED.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "no case purged anything"
    );
    assert!(
        HELD.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "no case held back a due document"
    );
}

#[test]
fn purge_matches_the_reference_model_sqlite_local() {
    purge_property(Kind::SqliteLocal);
}

#[test]
fn purge_matches_the_reference_model_postgres_s3() {
    purge_property(Kind::PostgresS3);
}

// ---------------------------------------------------------------------------
// Erasure

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

async fn erasure(f: Fixture) {
    let t = tenant(&f, "acme").await;
    let x1 = put(
        &t,
        "jane-1985",
        Category::IdDocument,
        &content(1, 5000),
        "Jane Doe passport.jpg",
    )
    .await;
    let x2 = put(
        &t,
        "jane-1985",
        Category::PayStub,
        &content(2, 300),
        "Jane Doe March.pdf",
    )
    .await;
    let x3 = put(
        &t,
        "jane-1985",
        Category::PayStub,
        &content(3, 300),
        "Jane Doe April.pdf",
    )
    .await;
    let y = put(
        &t,
        "john-1990",
        Category::Lease,
        &content(4, 100),
        "lease.pdf",
    )
    .await;
    // Legal holds block erasure, on the applicant or on any document.
    t.set_document_hold(x2, true).await.unwrap();
    assert!(matches!(
        t.erase_applicant(&app("jane-1985")).await,
        Err(Error::LegalHold)
    ));
    t.set_document_hold(x2, false).await.unwrap();
    t.set_applicant_hold(&app("jane-1985"), true).await.unwrap();
    assert!(matches!(
        t.erase_applicant(&app("jane-1985")).await,
        Err(Error::LegalHold)
    ));
    t.set_applicant_hold(&app("jane-1985"), false)
        .await
        .unwrap();

    // A copy of the blob store taken before the erasure.
    let blob_copy: Vec<(std::path::PathBuf, Vec<u8>)> = f
        .blob_files()
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let receipt = t.erase_applicant(&app("jane-1985")).await.unwrap();
    assert!(receipt.erased_at_ms <= receipt.completed_at_ms);
    assert_eq!(receipt.documents, 3);
    assert_eq!(receipt.bytes, 5600);
    assert_eq!(receipt.by_category.get(&Category::PayStub), Some(&2));
    let json = receipt.to_json();
    for pii in ["jane", "Jane", "passport", "March"] {
        assert!(!json.contains(pii), "receipt holds personal data: {json}");
    }
    assert_eq!(receipt.applicant_ref, t.applicant_ref(&app("jane-1985")));
    // Nothing of theirs can be read any more, by any path.
    for id in [x1, x2, x3] {
        assert!(matches!(t.get(id).await.map(|_| ()), Err(Error::NotFound)));
        assert!(matches!(
            t.get_range(id, 0..1).await.map(|_| ()),
            Err(Error::NotFound)
        ));
        assert!(matches!(t.head(id).await, Err(Error::NotFound)));
    }
    assert!(
        t.list(&app("jane-1985"), None, 10)
            .await
            .unwrap()
            .documents
            .is_empty()
    );
    assert!(matches!(
        t.export(&app("jane-1985")).await.map(|_| ()),
        Err(Error::NotFound)
    ));
    assert!(matches!(
        t.erase_applicant(&app("jane-1985")).await,
        Err(Error::NotFound)
    ));
    // The other applicant is untouched.
    assert_eq!(
        collect(t.get(y).await.unwrap().body).await.unwrap(),
        content(4, 100)
    );
    // The ledger entry is outside the database, in the blob store.
    let root = f.blob_dir.parent().unwrap();
    let ledger: Vec<_> = files_under(&root.join("ledger/erasures"));
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    let entry = std::fs::read_to_string(&ledger[0]).unwrap();
    assert!(entry.contains(&receipt.applicant_ref) && !entry.contains("jane"));
    let rep = f.vault.storage_report().await.unwrap();
    assert_eq!((rep.committed, rep.orphan_blobs), (1, 0));
    // Restoring the blobs from the copy serves nothing: their data keys were
    // wrapped under the destroyed applicant key.
    for (p, b) in &blob_copy {
        if !p.exists() {
            std::fs::write(p, b).unwrap();
        }
    }
    for id in [x1, x2, x3] {
        assert!(matches!(t.get(id).await.map(|_| ()), Err(Error::NotFound)));
    }
    assert_eq!(f.vault.storage_report().await.unwrap().orphan_blobs, 3);
    f.vault.sweep(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(f.vault.storage_report().await.unwrap().orphan_blobs, 0);
}

/// A backup of the metadata and the blobs taken before an erasure, restored
/// after it, would bring the applicant back: replaying the ledger erases
/// them again before anything is served. (SQLite + local files: the backup
/// is a copy of the directory.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_survives_a_restored_backup() {
    let f = Fixture::new(Kind::SqliteLocal).await;
    let t = tenant(&f, "acme").await;
    let x = put(
        &t,
        "jane-1985",
        Category::CreditReport,
        &content(1, 9000),
        "credit.pdf",
    )
    .await;
    let keep = put(
        &t,
        "john-1990",
        Category::Lease,
        &content(2, 100),
        "lease.pdf",
    )
    .await;
    f.vault.close().await;
    let backup = tempfile::tempdir().unwrap();
    // Wait for SQLite to checkpoint and remove its WAL on close.
    for _ in 0..500 {
        if !f.dir.path().join("meta.db-wal").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    common::copy_dir(f.dir.path(), backup.path());
    let vault = vault_core::vault::Vault::open(f.config.clone())
        .await
        .unwrap();
    let t = vault.tenant(t.id(), Actor::operator()).await.unwrap();
    t.erase_applicant(&app("jane-1985")).await.unwrap();
    vault.close().await;
    // Restore the old metadata and blobs, keep the ledger (it lives apart
    // from backups of the data).
    for name in ["meta.db", "meta.db-wal", "meta.db-shm"] {
        let _ = std::fs::remove_file(f.dir.path().join(name));
        if backup.path().join(name).exists() {
            std::fs::copy(backup.path().join(name), f.dir.path().join(name)).unwrap();
        }
    }
    common::copy_dir(
        &backup.path().join("blobs/blobs"),
        &f.dir.path().join("blobs/blobs"),
    );
    let vault = vault_core::vault::Vault::open(f.config.clone())
        .await
        .unwrap();
    let t = vault.tenant(t.id(), Actor::operator()).await.unwrap();
    assert!(
        t.head(x).await.is_ok(),
        "the restored backup holds the applicant again"
    );
    assert_eq!(
        vault
            .replay_erasure_ledger(&Actor::operator())
            .await
            .unwrap(),
        1
    );
    assert!(matches!(t.get(x).await.map(|_| ()), Err(Error::NotFound)));
    assert_eq!(
        collect(t.get(keep).await.unwrap().body).await.unwrap(),
        content(2, 100)
    );
    assert_eq!(
        vault
            .replay_erasure_ledger(&Actor::operator())
            .await
            .unwrap(),
        0
    );
    let report = vault.verify_audit().await.unwrap();
    assert!(
        report.problem.is_some(),
        "the restore rewound the log past a checkpoint: {report:?} {:?}",
        files_under(&f.dir.path().join("blobs/audit"))
    );
}

// ---------------------------------------------------------------------------
// Export

async fn export(f: Fixture) {
    let t = tenant(&f, "acme").await;
    let docs = [
        (Category::IdDocument, content(1, 0), "empty.txt"),
        (
            Category::PayStub,
            content(2, 4096),
            "Pay stub, \"March\".pdf",
        ),
        (Category::BankStatement, content(3, 20_000), "statement.PDF"),
        (Category::Other, content(4, 1), "no extension"),
    ];
    let mut ids = vec![];
    for (c, d, n) in &docs {
        ids.push(put(&t, "jane-1985", *c, d, n).await);
    }
    put(
        &t,
        "someone-else",
        Category::Lease,
        &content(9, 10),
        "other.pdf",
    )
    .await;
    let ex = t.export(&app("jane-1985")).await.unwrap();
    assert_eq!(ex.documents, 4);
    let bytes = collect(ex.body).await.unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut v = vec![];
        e.read_to_end(&mut v).unwrap();
        files.insert(name, v);
    }
    assert_eq!(files.len(), 6, "{:?}", files.keys().collect::<Vec<_>>());
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let listed = manifest["documents"].as_array().unwrap();
    assert_eq!(listed.len(), 4);
    for (i, (c, d, n)) in docs.iter().enumerate() {
        let m = listed
            .iter()
            .find(|m| m["id"] == ids[i].to_string())
            .unwrap();
        assert_eq!(m["category"], c.as_str());
        assert_eq!(m["file_name"], *n);
        assert_eq!(m["size"], d.len());
        assert_eq!(
            m["sha256"],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(d))
        );
        assert!(m["created"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            &files[m["path"].as_str().unwrap()],
            d,
            "archive file equals what was put"
        );
    }
    let csv = String::from_utf8(files["manifest.csv"].clone()).unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.contains("\"Pay stub, \"\"March\"\".pdf\""));
    assert!(!files.keys().any(|k| k.contains("other")));
}

// ---------------------------------------------------------------------------
// Root key rotation

fn hash_files(dir: &std::path::Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            !p.to_string_lossy().contains("metadata.json")
                && !p.to_string_lossy().contains("internal.json")
        })
        .map(|p| {
            let h = <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(&p).unwrap()).to_vec();
            (p, h)
        })
        .collect()
}

fn keys_v1() -> Arc<LocalKeyProvider> {
    Arc::new(
        LocalKeyProvider::new(vec![(
            RootKeyVersion::new(1).unwrap(),
            RootKey::from_slice(&[1u8; 32]).unwrap(),
        )])
        .unwrap(),
    )
}

async fn rotation(f: Fixture) {
    let config = f.config.clone();
    let vault = f.vault.clone();
    let id = vault
        .create_tenant("acme", &Actor::operator())
        .await
        .unwrap();
    let t = vault.tenant(id, Actor::operator()).await.unwrap();
    let mut docs = vec![];
    for i in 0..5 {
        docs.push((
            put(
                &t,
                &format!("a{i}"),
                Category::PayStub,
                &content(i, 3000),
                "x.pdf",
            )
            .await,
            content(i, 3000),
        ));
    }
    let before = hash_files(&f.blob_dir);
    let both = Arc::new(
        LocalKeyProvider::new(vec![
            (
                RootKeyVersion::new(1).unwrap(),
                RootKey::from_slice(&[1u8; 32]).unwrap(),
            ),
            (
                RootKeyVersion::new(2).unwrap(),
                RootKey::from_slice(&[2u8; 32]).unwrap(),
            ),
        ])
        .unwrap(),
    );
    let vault = vault_core::vault::Vault::open(config.clone().with_keys(both))
        .await
        .unwrap();
    let r = vault.rotate_root_key(&Actor::operator()).await.unwrap();
    assert_eq!(
        (r.version.get(), r.rewrapped),
        (2, 6),
        "5 applicant keys and the system key"
    );
    assert_eq!(
        vault
            .root_key_usage(RootKeyVersion::new(1).unwrap())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        vault
            .rotate_root_key(&Actor::operator())
            .await
            .unwrap()
            .rewrapped,
        0
    );
    assert_eq!(hash_files(&f.blob_dir), before, "no blob changed");
    // Version 1 retired: the vault opens and reads everything with v2 alone.
    let only2 = Arc::new(
        LocalKeyProvider::new(vec![(
            RootKeyVersion::new(2).unwrap(),
            RootKey::from_slice(&[2u8; 32]).unwrap(),
        )])
        .unwrap(),
    );
    let vault = vault_core::vault::Vault::open(config.with_keys(only2))
        .await
        .unwrap();
    let t = vault.tenant(id, Actor::operator()).await.unwrap();
    for (id, data) in &docs {
        assert_eq!(
            &collect(t.get(*id).await.unwrap().body).await.unwrap(),
            data
        );
    }
    assert!(vault.verify_audit().await.unwrap().is_ok());
    let log = vault.audit_log(0, 1000).await.unwrap();
    assert!(
        log.iter()
            .any(|r| r.action == "root_key.rotate" && r.actor == "operator")
    );
}

// ---------------------------------------------------------------------------
// Audit

async fn audit(f: Fixture) {
    let t = tenant(&f, "acme").await;
    let d1 = put(
        &t,
        "jane-1985",
        Category::PayStub,
        &content(1, 5000),
        "Jane secret name.pdf",
    )
    .await;
    let d2 = put(&t, "jane-1985", Category::PayStub, &content(2, 50), "b.pdf").await;
    collect(t.get(d1).await.unwrap().body).await.unwrap();
    collect(t.get_range(d1, 0..10).await.unwrap().body)
        .await
        .unwrap();
    t.set_document_hold(d1, true).await.unwrap();
    assert!(matches!(t.delete(d1).await, Err(Error::LegalHold)));
    t.set_document_hold(d1, false).await.unwrap();
    t.delete(d2).await.unwrap();
    t.close_application(&app("jane-1985"), Some(0))
        .await
        .unwrap();
    t.set_retention_policy(&RetentionPolicy::default())
        .await
        .unwrap();
    t.purge(now(), true).await.unwrap();
    drop(
        collect(t.export(&app("jane-1985")).await.unwrap().body)
            .await
            .unwrap(),
    );
    put(&t, "john", Category::Lease, &content(3, 10), "c.pdf").await;
    t.erase_applicant(&app("john")).await.unwrap();
    t.purge(now(), false).await.unwrap();
    let log = t.audit_log(0, 1000).await.unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    for expected in [
        ("tenant.create", "ok"),
        ("document.put", "ok"),
        ("document.read", "ok"),
        ("legal_hold.set", "ok"),
        ("document.delete", "denied"),
        ("legal_hold.clear", "ok"),
        ("document.delete", "ok"),
        ("application.close", "ok"),
        ("retention.set", "ok"),
        ("purge.dry_run", "ok"),
        ("applicant.export", "ok"),
        ("applicant.erase", "ok"),
        ("purge", "ok"),
    ] {
        assert!(
            actions.contains(&expected),
            "{expected:?} missing from {actions:?}"
        );
    }
    assert!(
        log.iter()
            .filter(|r| r.action != "tenant.create")
            .all(|r| r.actor == "api-key:test-admin")
    );
    assert!(log.iter().any(|r| r.target.contains(&d1.to_string())));
    for r in &log {
        assert!(
            !r.target.contains("secret") && !r.target.contains("jane"),
            "{r:?}"
        );
    }
    assert!(f.vault.verify_audit().await.unwrap().is_ok());
    f.vault.checkpoint_audit().await.unwrap();

    // Tampering with the log in the database is found, and located.
    let pool = sql(&f).await;
    let last: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    let exec = |q: String| {
        let pool = pool.clone();
        async move { sqlx::query(&q).execute(&pool).await.unwrap() }
    };
    // Edit.
    exec("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 5".into()).await;
    assert_eq!(
        f.vault.verify_audit().await.unwrap().problem,
        Some(AuditProblem::Tampered { seq: 5 })
    );
    exec("UPDATE audit_log SET actor = 'api-key:test-admin' WHERE seq = 5".into()).await;
    assert!(f.vault.verify_audit().await.unwrap().is_ok());
    // Delete from the middle.
    let saved = sqlx::query("SELECT seq FROM audit_log WHERE seq = 7")
        .fetch_one(&pool)
        .await
        .unwrap();
    drop(saved);
    exec("CREATE TABLE audit_backup AS SELECT * FROM audit_log".into()).await;
    exec("DELETE FROM audit_log WHERE seq = 7".into()).await;
    assert_eq!(
        f.vault.verify_audit().await.unwrap().problem,
        Some(AuditProblem::Missing { seq: 8 })
    );
    exec("INSERT INTO audit_log SELECT * FROM audit_backup WHERE seq = 7".into()).await;
    assert!(f.vault.verify_audit().await.unwrap().is_ok());
    // Reorder: swap the contents of two records.
    exec("UPDATE audit_log SET seq = -3 WHERE seq = 3".into()).await;
    exec("UPDATE audit_log SET seq = 3 WHERE seq = 4".into()).await;
    exec("UPDATE audit_log SET seq = 4 WHERE seq = -3".into()).await;
    assert_eq!(
        f.vault.verify_audit().await.unwrap().problem,
        Some(AuditProblem::Tampered { seq: 3 })
    );
    exec("DELETE FROM audit_log".into()).await;
    exec("INSERT INTO audit_log SELECT * FROM audit_backup".into()).await;
    assert!(f.vault.verify_audit().await.unwrap().is_ok());
    // Insert a forged record at the end, head moved along.
    exec(format!("INSERT INTO audit_log SELECT {} AS seq, tenant_id, at, actor, action, target, outcome, mac FROM audit_backup WHERE seq = 2", last + 1)).await;
    exec(format!("UPDATE audit_head SET seq = {}", last + 1)).await;
    assert_eq!(
        f.vault.verify_audit().await.unwrap().problem,
        Some(AuditProblem::Tampered {
            seq: last as u64 + 1
        })
    );
    exec(format!("DELETE FROM audit_log WHERE seq = {}", last + 1)).await;
    exec(format!("UPDATE audit_head SET seq = {last}")).await;
    assert!(f.vault.verify_audit().await.unwrap().is_ok());
    // Cut the tail back past the checkpoint, head rewound to match.
    let mac: Vec<u8> = sqlx::query_scalar(&format!(
        "SELECT mac FROM audit_log WHERE seq = {}",
        last - 3
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    exec(format!("DELETE FROM audit_log WHERE seq > {}", last - 3)).await;
    sqlx::query("UPDATE audit_head SET seq = $1, mac = $2")
        .bind(last - 3)
        .bind(mac)
        .execute(&pool)
        .await
        .unwrap();
    match f.vault.verify_audit().await.unwrap().problem {
        Some(AuditProblem::Truncated {
            last_seq,
            checkpoint_seq,
        }) => {
            assert_eq!(last_seq, last as u64 - 3);
            assert!(checkpoint_seq > last_seq);
        }
        other => panic!("cut tail not found: {other:?}"),
    }
    exec("DROP TABLE audit_backup".into()).await;
}

/// An action whose audit record cannot be written does not happen.
async fn audit_fails_closed(f: Fixture) {
    let t = tenant(&f, "acme").await;
    let d = put(&t, "app-1", Category::PayStub, &content(1, 3000), "a.pdf").await;
    let pool = sql(&f).await;
    sqlx::query("ALTER TABLE audit_log RENAME TO audit_log_away")
        .execute(&pool)
        .await
        .unwrap();
    // A read serves nothing.
    assert!(matches!(
        t.get(d).await.map(|_| ()),
        Err(Error::Database(_))
    ));
    // A delete deletes nothing.
    assert!(matches!(t.delete(d).await, Err(Error::Database(_))));
    // A put stores nothing visible.
    let mut r = PutRequest::new(app("app-1"), Category::PayStub, "application/pdf");
    r.file_name = Some("b.pdf".into());
    assert!(matches!(
        t.put(r, body(&content(2, 100), 50)).await,
        Err(Error::Database(_))
    ));
    // A hold, a purge and an erasure change nothing.
    assert!(t.set_document_hold(d, true).await.is_err());
    t.close_application(&app("app-1"), Some(0))
        .await
        .unwrap_err();
    assert!(t.erase_applicant(&app("app-1")).await.is_err());
    sqlx::query("ALTER TABLE audit_log_away RENAME TO audit_log")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        collect(t.get(d).await.unwrap().body).await.unwrap(),
        content(1, 3000)
    );
    assert_eq!(
        t.list(&app("app-1"), None, 10)
            .await
            .unwrap()
            .documents
            .len(),
        1
    );
    assert!(!t.head(d).await.unwrap().legal_hold);
    assert!(
        t.head(d).await.unwrap().retain_until_ms.is_none(),
        "the close did not happen"
    );
    f.vault.sweep(std::time::Duration::ZERO).await.unwrap();
    assert!(f.vault.verify_audit().await.unwrap().is_ok());
}

// ---------------------------------------------------------------------------
// Isolation of every lifecycle operation

async fn lifecycle_isolation(f: Fixture) {
    let a = tenant(&f, "tenant-a").await;
    let b = tenant(&f, "tenant-b").await;
    let d = put(
        &a,
        "shared-id",
        Category::PayStub,
        &content(1, 100),
        "a.pdf",
    )
    .await;
    a.close_application(&app("shared-id"), Some(0))
        .await
        .unwrap();
    let mut zero = RetentionPolicy::default();
    for c in Category::ALL {
        zero.retain_days.insert(c, 0);
    }
    b.set_retention_policy(&zero).await.unwrap();
    assert!(matches!(
        b.close_application(&app("shared-id"), None).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        b.open_application(&app("shared-id")).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        b.set_applicant_hold(&app("shared-id"), true).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        b.set_document_hold(d, true).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        b.erase_applicant(&app("shared-id")).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        b.export(&app("shared-id")).await.map(|_| ()),
        Err(Error::NotFound)
    ));
    assert!(
        b.purge(now() + 10_000 * DAY_MS, false)
            .await
            .unwrap()
            .documents
            .is_empty()
    );
    assert!(
        b.audit_log(0, 100)
            .await
            .unwrap()
            .iter()
            .all(|r| r.tenant == Some(b.id()))
    );
    // A's document and policy are untouched by all of it.
    assert_eq!(
        collect(a.get(d).await.unwrap().body).await.unwrap(),
        content(1, 100)
    );
    assert_eq!(
        a.retention_policy().await.unwrap(),
        RetentionPolicy::default()
    );
}

/// Holds placed while a purge runs always win: no document that ends up on
/// hold is ever purged, whatever the interleaving.
async fn holds_win_over_a_running_purge(f: Fixture) {
    let t = tenant(&f, "acme").await;
    let mut zero = RetentionPolicy::default();
    for c in Category::ALL {
        zero.retain_days.insert(c, 0);
    }
    t.set_retention_policy(&zero).await.unwrap();
    let mut ids = vec![];
    for i in 0..120u64 {
        ids.push(
            put(
                &t,
                &format!("a{}", i % 4),
                Category::PayStub,
                &content(i, 64),
                "x.pdf",
            )
            .await,
        );
    }
    for a in 0..4 {
        t.close_application(&app(&format!("a{a}")), Some(0))
            .await
            .unwrap();
    }
    let held: Vec<DocumentId> = ids
        .iter()
        .copied()
        .filter(|id| id.as_bytes()[0] % 3 == 0)
        .collect();
    let purger = {
        let t = t.clone();
        tokio::spawn(async move { t.purge(now(), false).await.unwrap() })
    };
    let mut placed = vec![];
    for id in &held {
        // A hold on a document already purged is "not found"; any other
        // outcome must keep the document.
        match t.set_document_hold(*id, true).await {
            Ok(()) => placed.push(*id),
            Err(Error::NotFound) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let report = purger.await.unwrap();
    for id in &placed {
        assert!(
            !report.documents.contains(id),
            "held document {id} was purged"
        );
        assert!(t.head(*id).await.unwrap().legal_hold);
    }
    assert_eq!(
        report.documents.len() + placed.len(),
        ids.len(),
        "every document was either purged or held"
    );
}

/// API keys: shown once, stored hashed, checked in constant time; wrong,
/// unknown, expired and revoked keys are all the same "unauthorized"; a key
/// reaches only its own tenant.
async fn api_keys(f: Fixture) {
    use vault_core::auth::Role;
    let a = tenant(&f, "tenant-a").await;
    let b = tenant(&f, "tenant-b").await;
    let op = Actor::operator();
    let k = f
        .vault
        .create_api_key(a.id(), Role::Agent, None, &op)
        .await
        .unwrap();
    assert!(
        k.key.starts_with("vk_") && k.key.len() == 3 + 32 + 1 + 64,
        "128-bit id, 256-bit secret"
    );
    let p = f.vault.authenticate(&k.key).await.unwrap();
    assert_eq!(
        (p.tenant, p.role, p.key_id.as_str()),
        (a.id(), Role::Agent, k.id.as_str())
    );
    // The secret is stored only as a hash.
    let pool = sql(&f).await;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM api_keys WHERE id = $1")
        .bind(&k.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let secret = &k.key[3 + 32 + 1..];
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(secret));
    // Every kind of wrong key is the same error.
    let mut wrong = k.key.to_string();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    let unknown = format!("vk_{}_{}", "f".repeat(32), secret);
    for bad in [
        wrong.as_str(),
        unknown.as_str(),
        "",
        "Bearer x",
        "vk_short_key",
    ] {
        assert!(
            matches!(f.vault.authenticate(bad).await, Err(Error::Unauthorized)),
            "{bad}"
        );
    }
    let expired = f
        .vault
        .create_api_key(a.id(), Role::Auditor, Some(now() - 1), &op)
        .await
        .unwrap();
    assert!(matches!(
        f.vault.authenticate(&expired.key).await,
        Err(Error::Unauthorized)
    ));
    // Revocation is tenant-scoped, audited, and takes effect at once.
    assert!(matches!(
        f.vault.revoke_api_key(b.id(), &k.id, &op).await,
        Err(Error::NotFound)
    ));
    f.vault.revoke_api_key(a.id(), &k.id, &op).await.unwrap();
    assert!(matches!(
        f.vault.authenticate(&k.key).await,
        Err(Error::Unauthorized)
    ));
    assert!(matches!(
        f.vault.revoke_api_key(a.id(), &k.id, &op).await,
        Err(Error::NotFound)
    ));
    let log = a.audit_log(0, 100).await.unwrap();
    assert!(
        log.iter()
            .any(|r| r.action == "api_key.create" && r.target.contains(&k.id))
    );
    assert!(
        log.iter()
            .any(|r| r.action == "api_key.revoke" && r.target.contains(&k.id))
    );
    assert!(
        log.iter().all(|r| !r.target.contains(secret)),
        "no secret in the audit log"
    );
    assert!(matches!(
        f.vault
            .create_api_key(vault_core::ids::TenantId::random(), Role::Admin, None, &op)
            .await,
        Err(Error::NotFound)
    ));
}

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

suite!(
    erasure,
    export,
    audit,
    audit_fails_closed,
    lifecycle_isolation,
    holds_win_over_a_running_purge,
    api_keys,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_sqlite_local() {
    rotation(Fixture::with_keys(Kind::SqliteLocal, keys_v1()).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_postgres_s3() {
    rotation(Fixture::with_keys(Kind::PostgresS3, keys_v1()).await).await
}
