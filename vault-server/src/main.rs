//! `vault`: the document vault's operator CLI (and, from issue #6, its HTTP
//! service). A thin adapter: every rule lives in vault-core.
#![forbid(unsafe_code)]

mod config;
mod ops;
mod server;
mod time;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vault_core::keys::{FileKeyProvider, KeyProvider};

use vault_core::config::ConfigFile;

/// The document vault's operator command line.
#[derive(Debug, Parser)]
#[command(name = "vault", version, about)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "VAULT_CONFIG",
        default_value = "vault.toml"
    )]
    config: PathBuf,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a configuration, a data directory and a 0600 root key file in
    /// DIR (refuses to overwrite anything).
    Init {
        /// Directory to create the vault in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Serve the HTTP API (`docs/API.md`) until SIGINT or SIGTERM, then
    /// finish in-flight requests.
    Serve {
        /// Address to listen on (overrides `[server] listen`).
        #[arg(long, env = "VAULT_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Tenants (leasing companies).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Load the root key file named by the configuration and show its
    /// versions (never the keys).
    Keys,
    /// Remove what is due under each tenant's retention policy (every
    /// tenant), as of now or `--as-of` (Unix milliseconds or
    /// YYYY-MM-DDTHH:MM:SSZ; never in the future unless `--dry-run`).
    Purge {
        /// The time to judge retention against.
        #[arg(long)]
        as_of: Option<String>,
        /// List what a real run would remove; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Erase an applicant (crypto-shredding) and print the receipt.
    Erase {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// The applicant's id.
        applicant: String,
    },
    /// Export an applicant's documents as a tar archive with a manifest.
    Export {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// The applicant's id.
        applicant: String,
        /// Archive to create (refuses to overwrite; created 0600).
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Add a new root key version to the key file and rewrap every key under
    /// it (no document is re-encrypted).
    RotateRootKey,
    /// Remove leftovers of interrupted uploads and deletions older than the
    /// grace period.
    Sweep {
        /// Grace period in seconds (longer than the longest upload).
        #[arg(long, default_value_t = 3600)]
        grace_seconds: u64,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant and its first admin API key (printed once).
    Create {
        /// The company's name (unique; not a person's).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApikeyCommand {
    /// Create an API key (printed once; only its hash is stored).
    Create {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// admin, agent, uploader, auditor or purge.
        #[arg(long)]
        role: String,
        /// Expiry: Unix milliseconds or YYYY-MM-DDTHH:MM:SSZ (default: none).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Revoke an API key.
    Revoke {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// The key's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the whole log against its MACs and checkpoints (exit code 3
    /// if anything is wrong).
    Verify,
}

/// Exit code when `audit verify` finds a problem.
const EXIT_AUDIT_PROBLEM: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            if cli.json {
                println!("{}", serde_json::json!({ "error": msg }));
            } else {
                eprintln!("error: {msg}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<u8, String> {
    match &cli.command {
        Command::Init { dir } => init(dir, cli.json).map(|()| 0),
        Command::Keys => keys(&cli.config, cli.json).map(|()| 0),
        other => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(ops::run(&cli.config, cli.json, other))
        }
    }
}

fn init(dir: &Path, json: bool) -> Result<(), String> {
    let created = config::init(dir).map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "config": created.config,
                "key_file": created.key_file,
                "data_dir": created.data_dir,
            })
        );
    } else {
        println!("created {}", created.config.display());
        println!(
            "created {} (mode 0600: keep it apart from the data and its backups)",
            created.key_file.display()
        );
        println!("created {}", created.data_dir.display());
    }
    Ok(())
}

fn keys(config_path: &Path, json: bool) -> Result<(), String> {
    let config = ConfigFile::load(config_path).map_err(|e| e.to_string())?;
    let key_file = config
        .key_file()
        .ok_or_else(|| "the configuration takes its keys from the environment".to_string())?;
    let provider = FileKeyProvider::load(&key_file).map_err(|e| e.to_string())?;
    let versions: Vec<u32> = provider.versions().iter().map(|v| v.get()).collect();
    let current = provider.current_version().get();
    if json {
        println!(
            "{}",
            serde_json::json!({ "key_file": key_file, "versions": versions, "current": current })
        );
    } else {
        println!(
            "key file {}: root key versions {versions:?}, current {current}",
            key_file.display()
        );
    }
    Ok(())
}
