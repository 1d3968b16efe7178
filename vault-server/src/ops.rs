//! The operator commands that act on an open vault.

use std::path::Path;

use futures::StreamExt;
use vault_core::audit::Actor;
use vault_core::config::ConfigFile;
use vault_core::ids::{ApplicantId, TenantId};
use vault_core::keys::FileKeyProvider;
use vault_core::vault::Vault;

use crate::{AuditCommand, Command, EXIT_AUDIT_PROBLEM};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds, or `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("--as-of {s:?}: expected Unix milliseconds or YYYY-MM-DDTHH:MM:SSZ");
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().map_err(|_| bad());
    let (y, m, d, hh, mm, ss) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    // Days from civil (H. Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 86_400) + hh * 3600 + mm * 60 + ss) * 1000)
}

async fn open(config: &Path) -> Result<Vault, String> {
    let c = ConfigFile::load(config).map_err(|e| e.to_string())?;
    Vault::open(c.vault_config().map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())
}

fn emit(json: bool, value: serde_json::Value, text: String) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

pub(crate) async fn run(config: &Path, json: bool, command: &Command) -> Result<u8, String> {
    let actor = Actor::operator();
    match command {
        Command::Purge { as_of, dry_run } => {
            let now = now_ms();
            let as_of = as_of.as_deref().map(parse_time).transpose()?.unwrap_or(now);
            if as_of > now + 60_000 && !dry_run {
                return Err("--as-of is in the future: that would purge documents before they are due (use --dry-run to preview)".into());
            }
            let vault = open(config).await?;
            let reports = vault
                .purge_all(as_of, *dry_run, &actor)
                .await
                .map_err(|e| e.to_string())?;
            let total: usize = reports.iter().map(|(_, r)| r.documents.len()).sum();
            let held: u64 = reports.iter().map(|(_, r)| r.held).sum();
            let value = serde_json::json!({
                "as_of_ms": as_of,
                "dry_run": dry_run,
                "documents": total,
                "held": held,
                "tenants": reports.iter().map(|(id, r)| serde_json::json!({
                    "tenant_id": id.to_string(),
                    "documents": r.documents.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                    "by_category": r.by_category.iter().map(|(c, n)| (c.as_str().to_owned(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
                })).collect::<Vec<_>>(),
            });
            let verb = if *dry_run { "would purge" } else { "purged" };
            emit(
                json,
                value,
                format!(
                    "{verb} {total} document(s) in {} tenant(s); {held} due but held",
                    reports.len()
                ),
            );
            Ok(0)
        }
        Command::Erase { tenant, applicant } => {
            let vault = open(config).await?;
            let t = vault
                .tenant(TenantId::parse(tenant).map_err(|e| e.to_string())?, actor)
                .await
                .map_err(|e| e.to_string())?;
            let receipt = t
                .erase_applicant(&ApplicantId::new(applicant).map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())?;
            let value: serde_json::Value =
                serde_json::from_str(&receipt.to_json()).map_err(|e| e.to_string())?;
            emit(
                json,
                value,
                format!(
                    "erased: {} document(s); receipt {}",
                    receipt.documents, receipt.receipt_id
                ),
            );
            Ok(0)
        }
        Command::Export {
            tenant,
            applicant,
            output,
        } => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let vault = open(config).await?;
            let t = vault
                .tenant(TenantId::parse(tenant).map_err(|e| e.to_string())?, actor)
                .await
                .map_err(|e| e.to_string())?;
            let export = t
                .export(&ApplicantId::new(applicant).map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(output)
                .map_err(|e| format!("cannot create {}: {}", output.display(), e.kind()))?;
            let mut body = export.body;
            let mut bytes = 0u64;
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) => {
                        bytes += c.len() as u64;
                        file.write_all(&c).map_err(|e| e.to_string())?;
                    }
                    Err(e) => {
                        drop(file);
                        let _ = std::fs::remove_file(output);
                        return Err(e.to_string());
                    }
                }
            }
            file.sync_all().map_err(|e| e.to_string())?;
            emit(
                json,
                serde_json::json!({ "documents": export.documents, "bytes": bytes, "output": output }),
                format!(
                    "exported {} document(s), {bytes} bytes, to {}",
                    export.documents,
                    output.display()
                ),
            );
            Ok(0)
        }
        Command::RotateRootKey => {
            let c = ConfigFile::load(config).map_err(|e| e.to_string())?;
            let key_file = c
                .key_file()
                .ok_or("rotate-root-key manages a key file; this configuration takes keys from the environment")?;
            let version = FileKeyProvider::add_version(&key_file).map_err(|e| e.to_string())?;
            let vault = Vault::open(c.vault_config().map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())?;
            let report = vault
                .rotate_root_key(&actor)
                .await
                .map_err(|e| e.to_string())?;
            let provider = FileKeyProvider::load(&key_file).map_err(|e| e.to_string())?;
            let mut retirable = vec![];
            for v in vault_core::keys::KeyProvider::versions(&provider) {
                if v != version && vault.root_key_usage(v).await.map_err(|e| e.to_string())? == 0 {
                    retirable.push(v.get());
                }
            }
            emit(
                json,
                serde_json::json!({ "version": version.get(), "rewrapped": report.rewrapped, "retirable": retirable }),
                format!(
                    "root key version {} added; {} key(s) rewrapped; versions no longer used (remove from the key file to retire): {retirable:?}",
                    version.get(),
                    report.rewrapped
                ),
            );
            Ok(0)
        }
        Command::Sweep { grace_seconds } => {
            let vault = open(config).await?;
            let r = vault
                .sweep(std::time::Duration::from_secs(*grace_seconds))
                .await
                .map_err(|e| e.to_string())?;
            emit(
                json,
                serde_json::json!({ "pending_rows": r.pending_rows, "orphan_blobs": r.orphan_blobs, "staging_files": r.staging_files }),
                format!(
                    "removed {} pending row(s), {} orphan blob(s), {} staging file(s)",
                    r.pending_rows, r.orphan_blobs, r.staging_files
                ),
            );
            Ok(0)
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let vault = open(config).await?;
            let report = vault.verify_audit().await.map_err(|e| e.to_string())?;
            let problem = report.problem.as_ref().map(|p| format!("{p:?}"));
            emit(
                json,
                serde_json::json!({ "ok": report.is_ok(), "records": report.records, "checkpoint_seq": report.checkpoint.as_ref().map(|c| c.seq), "problem": problem }),
                match &problem {
                    None => format!("audit log verified: {} record(s)", report.records),
                    Some(p) => format!("audit log FAILED verification: {p}"),
                },
            );
            Ok(if report.is_ok() {
                0
            } else {
                EXIT_AUDIT_PROBLEM
            })
        }
        Command::Init { .. } | Command::Keys => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("0").unwrap(), 0);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_time("2026-11-23T17:38:25Z").unwrap(),
            1_795_455_505_000
        );
        assert!(parse_time("2026-13-01T00:00:00Z").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}
