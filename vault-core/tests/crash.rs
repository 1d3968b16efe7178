//! Crash safety: a child process doing puts and deletes on SQLite + local
//! files is killed (SIGKILL) at random points; after each kill the store is
//! checked: every acknowledged document reads back intact, nothing
//! half-written is listed or served, and `sweep` leaves it consistent.
//!
//! `VAULT_CRASH_POINTS` sets the number of kills (default 200; the longer
//! documented run uses 2000).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{body, collect, content};
use vault_core::Error;
use vault_core::category::Category;
use vault_core::format::SegmentSize;
use vault_core::ids::{ApplicantId, DocumentId, TenantId};
use vault_core::keys::FileKeyProvider;
use vault_core::store::BlobStoreConfig;
use vault_core::vault::{PutRequest, Vault, VaultConfig};

const APPLICANTS: u64 = 3;

fn config(dir: &Path) -> VaultConfig {
    let keys = FileKeyProvider::load(&dir.join("root.key")).unwrap();
    VaultConfig::new(
        BlobStoreConfig::Local {
            dir: dir.join("blobs"),
        },
        format!("sqlite://{}", dir.join("meta.db").display()),
        Arc::new(keys),
    )
    .with_segment_size(SegmentSize::new(4096).unwrap())
}

fn applicant(k: u64) -> ApplicantId {
    ApplicantId::new(&format!("crash-app-{}", k % APPLICANTS)).unwrap()
}

/// Small xorshift, so the child's choices follow its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The child: runs only when started by `crash_at_random_points`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Some(dir) = std::env::var_os("VAULT_CRASH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let tenant = TenantId::parse(&std::env::var("VAULT_CRASH_TENANT").unwrap()).unwrap();
    let seed: u64 = std::env::var("VAULT_CRASH_SEED").unwrap().parse().unwrap();
    let vault = Vault::open(config(&dir)).await.unwrap();
    let t = vault
        .tenant(tenant, vault_core::audit::Actor::operator())
        .await
        .unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let mut mine: Vec<DocumentId> = vec![];
    for n in 0u64.. {
        if !mine.is_empty() && rng.next() % 3 == 0 {
            let id = mine.swap_remove((rng.next() % mine.len() as u64) as usize);
            writeln!(out, "DELSTART {id}").unwrap();
            out.flush().unwrap();
            t.delete(id).await.unwrap();
            writeln!(out, "DEL {id}").unwrap();
        } else {
            let cseed = seed * 1_000_000 + n;
            let len = (rng.next() % (48 * 1024)) as usize;
            writeln!(out, "PUTSTART {cseed} {len}").unwrap();
            out.flush().unwrap();
            let data = content(cseed, len);
            let req = PutRequest::new(applicant(cseed), Category::BankStatement, "application/pdf");
            let info = t.put(req, body(&data, 8192)).await.unwrap();
            writeln!(out, "PUT {} {cseed} {len}", info.id).unwrap();
            mine.push(info.id);
        }
        out.flush().unwrap();
    }
}

#[derive(Default)]
struct Ledger {
    /// What the sweeps removed, over the whole run.
    swept: vault_core::vault::SweepReport,
    /// Kills that interrupted a put or a delete (its start was printed, its
    /// end was not).
    interrupted: u64,
    /// Acknowledged puts: id → (content seed, length).
    acked: HashMap<DocumentId, (u64, usize)>,
    /// Puts started (acknowledged or not): (seed, len).
    started: HashSet<(u64, usize)>,
    /// Deletes started but not acknowledged.
    deleting: HashSet<DocumentId>,
}

#[test]
fn crash_at_random_points() {
    let points: u64 = std::env::var("VAULT_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    FileKeyProvider::create(&dir.join("root.key")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tenant = rt.block_on(async {
        let v = Vault::open(config(&dir)).await.unwrap();
        let t = v
            .create_tenant("crash-test", &vault_core::audit::Actor::operator())
            .await
            .unwrap();
        v.close().await;
        t
    });
    let exe = std::env::current_exe().unwrap();
    let mut ledger = Ledger::default();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for point in 0..points {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env("VAULT_CRASH_DIR", &dir)
            .env("VAULT_CRASH_TENANT", tenant.to_string())
            .env("VAULT_CRASH_SEED", (point + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the child's vault to be open, then let it work for a
        // random while and kill it.
        let mut lines = vec![];
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(l) if l == "READY" => break,
                Ok(l) => lines.push(l),
                Err(e) => panic!("child never became ready: {e}"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 60_000));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        let starts = lines
            .iter()
            .filter(|l| l.starts_with("PUTSTART") || l.starts_with("DELSTART"))
            .count();
        let ends = lines
            .iter()
            .filter(|l| l.starts_with("PUT ") || l.starts_with("DEL "))
            .count();
        ledger.interrupted += (starts > ends) as u64;
        for l in &lines {
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts.as_slice() {
                ["PUTSTART", s, n] => {
                    ledger
                        .started
                        .insert((s.parse().unwrap(), n.parse().unwrap()));
                }
                ["PUT", id, s, n] => {
                    ledger.acked.insert(
                        DocumentId::parse(id).unwrap(),
                        (s.parse().unwrap(), n.parse().unwrap()),
                    );
                }
                ["DELSTART", id] => {
                    ledger.deleting.insert(DocumentId::parse(id).unwrap());
                }
                ["DEL", id] => {
                    let id = DocumentId::parse(id).unwrap();
                    ledger.deleting.remove(&id);
                    ledger.acked.remove(&id);
                }
                _ => {}
            }
        }
        rt.block_on(check(
            &dir,
            tenant,
            &mut ledger,
            point % 10 == 9 || point + 1 == points,
        ));
    }
    eprintln!(
        "{points} kills, {} mid-operation; {} puts started; sweeps removed {} pending rows, {} orphan blobs, {} staging files",
        ledger.interrupted,
        ledger.started.len(),
        ledger.swept.pending_rows,
        ledger.swept.orphan_blobs,
        ledger.swept.staging_files
    );
    assert!(
        ledger.interrupted > points / 2,
        "too few kills landed inside an operation"
    );
}

/// Checks the store after a kill; with `sweep`, also sweeps and checks that
/// storage is consistent.
async fn check(dir: &Path, tenant: TenantId, ledger: &mut Ledger, sweep: bool) {
    let vault = Vault::open(config(dir)).await.unwrap();
    let t = vault
        .tenant(tenant, vault_core::audit::Actor::operator())
        .await
        .unwrap();
    // Every acknowledged document reads back intact (unless a delete of it
    // had started).
    for (id, (seed, len)) in &ledger.acked {
        match t.get(*id).await {
            Ok(d) => assert_eq!(collect(d.body).await.unwrap(), content(*seed, *len), "{id}"),
            Err(Error::NotFound) if ledger.deleting.contains(id) => {}
            Err(e) => panic!("acknowledged document {id} is unreadable: {e}"),
        }
    }
    // Everything listed is whole: it reads, and it is one of the started puts.
    let mut listed = HashSet::new();
    for k in 0..APPLICANTS {
        let mut cursor = None;
        loop {
            let page = t.list(&applicant(k), cursor.as_ref(), 200).await.unwrap();
            for d in &page.documents {
                let bytes = collect(t.get(d.id).await.unwrap().body).await.unwrap();
                assert_eq!(bytes.len() as u64, d.size);
                assert!(
                    ledger
                        .started
                        .iter()
                        .any(|&(s, n)| n == bytes.len() && content(s, n) == bytes),
                    "listed document {} matches no put",
                    d.id
                );
                listed.insert(d.id);
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    // Deletes that did not finish either happened or not; settle them, and
    // keep the store small.
    for id in std::mem::take(&mut ledger.deleting) {
        if !listed.contains(&id) {
            ledger.acked.remove(&id);
        }
    }
    if sweep {
        let r = vault.sweep(Duration::ZERO).await.unwrap();
        ledger.swept.pending_rows += r.pending_rows;
        ledger.swept.orphan_blobs += r.orphan_blobs;
        ledger.swept.staging_files += r.staging_files;
        let rep = vault.storage_report().await.unwrap();
        assert_eq!(
            (rep.pending, rep.orphan_blobs, rep.missing_blobs),
            (0, 0, 0),
            "{rep:?}"
        );
        assert_eq!(rep.committed as usize, listed.len(), "{rep:?}");
        // Staging files of killed uploads are gone too.
        let staging = std::fs::read_dir(dir.join("blobs/blobs"))
            .map(|rd| {
                rd.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .contains('#')
                })
                .count()
            })
            .unwrap_or(0);
        assert_eq!(staging, 0);
        // Unacknowledged but committed documents are adopted, so later
        // checks hold them to the same standard.
        if listed.len() > 60 {
            for id in listed.iter().take(listed.len() - 30) {
                t.delete(*id).await.unwrap();
                ledger.acked.remove(id);
            }
        }
    }
    vault.close().await;
}
