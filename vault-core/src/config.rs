//! The configuration file (`vault.toml`), shared by the CLI, the service
//! and the C ABI so that a vault is opened the same way everywhere.
//!
//! ```toml
//! [keys]
//! file = "root.key"            # 0600 key file (or: env = true, VAULT_ROOT_KEYS)
//!
//! [storage]
//! data_dir = "data"            # local blobs in data/blobs, SQLite in data/metadata.db
//! # metadata_url = "postgres://vault@db/vault"   # instead of SQLite
//! # [storage.s3]                                  # instead of local blobs
//! # endpoint = "https://s3.example"; bucket = "vault"; region = "us-east-1"
//! # access_key_id = "..."; secret_access_key = "..."; allow_http = false
//! ```
//!
//! Relative paths are relative to the file's directory. The environment
//! overrides secrets so they need not sit in the file:
//! `VAULT_METADATA_URL`, `VAULT_S3_ACCESS_KEY_ID`, `VAULT_S3_SECRET_ACCESS_KEY`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::keys::{FileKeyProvider, LocalKeyProvider};
use crate::store::{BlobStoreConfig, S3Config};
use crate::vault::VaultConfig;

/// The parsed file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    keys: KeysSection,
    storage: StorageSection,
    /// `[server]`: the HTTP service's own settings, parsed (strictly) by
    /// the service.
    server: Option<toml::Table>,
    #[serde(skip)]
    base: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysSection {
    file: Option<PathBuf>,
    #[serde(default)]
    env: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    data_dir: PathBuf,
    metadata_url: Option<String>,
    s3: Option<S3Section>,
}

impl std::fmt::Debug for StorageSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSection")
            .field("data_dir", &self.data_dir)
            .field(
                "metadata_url",
                &self
                    .metadata_url
                    .as_deref()
                    .map(crate::vault::mask_url_password),
            )
            .field("s3", &self.s3.as_ref().map(|s| &s.bucket))
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct S3Section {
    endpoint: Option<String>,
    bucket: String,
    region: String,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    #[serde(default)]
    allow_http: bool,
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read configuration {}: {}",
                path.display(),
                e.kind()
            ))
        })?;
        let mut c: ConfigFile = toml::from_str(&text).map_err(|e| {
            Error::Config(format!(
                "invalid configuration {}: {}",
                path.display(),
                e.message()
            ))
        })?;
        c.base = path.parent().map(Path::to_owned).unwrap_or_default();
        if c.keys.file.is_none() && !c.keys.env {
            return Err(Error::Config(
                "[keys] needs `file = ...` or `env = true`".into(),
            ));
        }
        Ok(c)
    }

    /// The root key file, if the keys come from one.
    pub fn key_file(&self) -> Option<PathBuf> {
        self.keys.file.as_ref().map(|f| self.base.join(f))
    }

    /// The `[server]` section, if present, for the service to parse.
    pub fn server_section(&self) -> Option<&toml::Table> {
        self.server.as_ref()
    }

    /// The directory relative paths in the file are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.base.join(&self.storage.data_dir)
    }

    /// Loads the key provider this file names.
    pub fn key_provider(&self) -> Result<Arc<LocalKeyProvider>> {
        match self.key_file() {
            Some(path) => Ok(Arc::new(FileKeyProvider::load(&path)?)),
            None => Ok(Arc::new(LocalKeyProvider::from_env()?)),
        }
    }

    /// The vault configuration, with environment overrides applied.
    pub fn vault_config(&self) -> Result<VaultConfig> {
        let data = self.data_dir();
        let metadata_url = std::env::var("VAULT_METADATA_URL")
            .ok()
            .or_else(|| self.storage.metadata_url.clone())
            .unwrap_or_else(|| format!("sqlite://{}", data.join("metadata.db").display()));
        let blobs = match &self.storage.s3 {
            None => BlobStoreConfig::Local {
                dir: data.join("blobs"),
            },
            Some(s3) => BlobStoreConfig::S3(S3Config {
                endpoint: s3.endpoint.clone(),
                bucket: s3.bucket.clone(),
                region: s3.region.clone(),
                access_key_id: std::env::var("VAULT_S3_ACCESS_KEY_ID")
                    .ok()
                    .or_else(|| s3.access_key_id.clone())
                    .ok_or_else(|| Error::Config("S3 access key id missing".into()))?,
                secret_access_key: std::env::var("VAULT_S3_SECRET_ACCESS_KEY")
                    .ok()
                    .or_else(|| s3.secret_access_key.clone())
                    .ok_or_else(|| Error::Config("S3 secret access key missing".into()))?,
                allow_http: s3.allow_http,
            }),
        };
        Ok(VaultConfig::new(blobs, metadata_url, self.key_provider()?))
    }
}
