//! `vault`: the document vault's operator CLI (and, from issue #6, its HTTP
//! service). A thin adapter: every rule lives in vault-core.
#![forbid(unsafe_code)]

mod config;

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
enum Command {
    /// Create a configuration, a data directory and a 0600 root key file in
    /// DIR (refuses to overwrite anything).
    Init {
        /// Directory to create the vault in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Load the root key file named by the configuration and show its
    /// versions (never the keys).
    Keys,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
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

fn run(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Init { dir } => init(dir, cli.json),
        Command::Keys => keys(&cli.config, cli.json),
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
