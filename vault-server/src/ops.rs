//! The operator commands that act on an open vault.

use std::path::Path;

use futures::StreamExt;
use vault_core::audit::Actor;
use vault_core::config::ConfigFile;
use vault_core::ids::{ApplicantId, TenantId};
use vault_core::keys::FileKeyProvider;
use vault_core::vault::Vault;

use crate::{ApikeyCommand, AuditCommand, Command, EXIT_AUDIT_PROBLEM, TenantCommand};

use crate::time::{now_ms, parse_time};

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
            let as_of = as_of
                .as_deref()
                .map(|t| parse_time(t).map_err(|e| format!("--as-of {e}")))
                .transpose()?
                .unwrap_or(now);
            if as_of > now + 60_000 && !dry_run {
                return Err("--as-of is in the future: that would purge documents before they are due (use --dry-run to preview)".into());
            }
            let vault = open(config).await?;
            let bar = progress(
                json,
                if *dry_run {
                    "listing what is due"
                } else {
                    "purging"
                },
            );
            let reports = vault
                .purge_all(as_of, *dry_run, &actor)
                .await
                .map_err(|e| e.to_string())?;
            bar.finish_and_clear();
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
            let bar = progress(json, &format!("exporting {} document(s)", export.documents));
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) => {
                        bytes += c.len() as u64;
                        bar.set_position(bytes);
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
            bar.finish_and_clear();
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
            let bar = progress(json, "rewrapping keys");
            let report = vault
                .rotate_root_key(&actor)
                .await
                .map_err(|e| e.to_string())?;
            bar.finish_and_clear();
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
            let bar = progress(json, "sweeping");
            let r = vault
                .sweep(std::time::Duration::from_secs(*grace_seconds))
                .await
                .map_err(|e| e.to_string())?;
            bar.finish_and_clear();
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
        Command::Serve { listen } => {
            let c = ConfigFile::load(config).map_err(|e| e.to_string())?;
            let mut settings =
                crate::server::settings::Settings::from_table(c.server_section(), c.base_dir())?;
            if let Some(addr) = listen {
                settings.listen = *addr;
            }
            init_tracing(json);
            let vault = Vault::open(c.vault_config().map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())?;
            let listener = crate::server::bind(settings.listen).await?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let scheme = if settings.tls.is_some() {
                "https"
            } else {
                "http"
            };
            emit(
                json,
                serde_json::json!({ "listening": format!("{scheme}://{addr}") }),
                format!("listening on {scheme}://{addr}"),
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
            crate::server::serve(
                vault.clone(),
                settings,
                listener,
                crate::server::shutdown_signal(),
            )
            .await?;
            vault.close().await;
            Ok(0)
        }
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let vault = open(config).await?;
            let tenant = vault
                .create_tenant(name, &actor)
                .await
                .map_err(|e| e.to_string())?;
            let key = vault
                .create_api_key(tenant, vault_core::auth::Role::Admin, None, &actor)
                .await
                .map_err(|e| e.to_string())?;
            emit(
                json,
                serde_json::json!({ "tenant_id": tenant.to_string(), "api_key": key.key.as_str(), "api_key_id": key.id }),
                format!(
                    "tenant {tenant}\nadmin API key (shown once; store it now): {}",
                    key.key.as_str()
                ),
            );
            Ok(0)
        }
        Command::Apikey {
            command:
                ApikeyCommand::Create {
                    tenant,
                    role,
                    expires,
                },
        } => {
            let tenant = TenantId::parse(tenant).map_err(|e| e.to_string())?;
            let role: vault_core::auth::Role =
                role.parse().map_err(|e: vault_core::Error| e.to_string())?;
            let expires = expires
                .as_deref()
                .map(|t| parse_time(t).map_err(|e| format!("--expires {e}")))
                .transpose()?;
            if expires.is_some_and(|e| e <= now_ms()) {
                return Err("--expires is in the past".into());
            }
            let vault = open(config).await?;
            let key = vault
                .create_api_key(tenant, role, expires, &actor)
                .await
                .map_err(|e| e.to_string())?;
            emit(
                json,
                serde_json::json!({ "id": key.id, "api_key": key.key.as_str(), "role": role.as_str(), "expires_at_ms": expires }),
                format!(
                    "API key {} ({}; shown once): {}",
                    key.id,
                    role.as_str(),
                    key.key.as_str()
                ),
            );
            Ok(0)
        }
        Command::Apikey {
            command: ApikeyCommand::Revoke { tenant, id },
        } => {
            let tenant = TenantId::parse(tenant).map_err(|e| e.to_string())?;
            let vault = open(config).await?;
            vault
                .revoke_api_key(tenant, id, &actor)
                .await
                .map_err(|e| e.to_string())?;
            emit(
                json,
                serde_json::json!({ "revoked": id }),
                format!("API key {id} revoked"),
            );
            Ok(0)
        }
        Command::Init { .. } | Command::Keys => Ok(0),
    }
}

/// Structured logs on stderr (JSON with `--json`), filtered by `VAULT_LOG`
/// (default `info`).
fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// A progress indicator on stderr when it is a terminal and the output is
/// not JSON; hidden otherwise. Counts bytes when positions are set, spins
/// otherwise.
fn progress(json: bool, message: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} {bytes} ({bytes_per_sec}) {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
