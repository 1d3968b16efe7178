//! The configuration file (`vault.toml`) and `vault init`.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vault_core::keys::FileKeyProvider;

/// Name of the configuration file `vault init` writes.
pub(crate) const CONFIG_FILE: &str = "vault.toml";
/// Name of the root key file `vault init` writes.
pub(crate) const KEY_FILE: &str = "root.key";
/// Name of the data directory `vault init` creates.
pub(crate) const DATA_DIR: &str = "data";

/// A parsed configuration. Relative paths are relative to the directory of
/// the configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    keys: KeysConfig,
    storage: StorageConfig,
    #[serde(skip)]
    base: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysConfig {
    /// Path of the root key file.
    file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageConfig {
    /// Directory for local blobs and the SQLite database.
    data_dir: PathBuf,
}

/// Why a configuration could not be loaded or created.
#[derive(Debug)]
pub(crate) enum ConfigError {
    Read(PathBuf, std::io::ErrorKind),
    Parse(PathBuf, String),
    Exists(PathBuf),
    Create(PathBuf, std::io::ErrorKind),
    Keys(vault_core::Error),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(p, k) => write!(f, "cannot read configuration {}: {k}", p.display()),
            Self::Parse(p, m) => write!(f, "invalid configuration {}: {m}", p.display()),
            Self::Exists(p) => write!(
                f,
                "{} already exists; refusing to overwrite it",
                p.display()
            ),
            Self::Create(p, k) => write!(f, "cannot create {}: {k}", p.display()),
            Self::Keys(e) => write!(f, "{e}"),
        }
    }
}

impl Config {
    /// Reads and parses `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e.kind()))?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse(path.to_owned(), e.message().to_owned()))?;
        config.base = path.parent().map(Path::to_owned).unwrap_or_default();
        Ok(config)
    }

    /// The root key file, resolved against the configuration's directory.
    pub(crate) fn key_file(&self) -> PathBuf {
        self.base.join(&self.keys.file)
    }

    /// The data directory, resolved against the configuration's directory.
    #[allow(dead_code)] // read by the storage layer (issue #4)
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.base.join(&self.storage.data_dir)
    }
}

/// What `init` created.
pub(crate) struct Created {
    pub(crate) config: PathBuf,
    pub(crate) key_file: PathBuf,
    pub(crate) data_dir: PathBuf,
}

/// Creates `dir/vault.toml`, `dir/root.key` (0600) and `dir/data/`,
/// refusing to overwrite any of them.
pub(crate) fn init(dir: &Path) -> Result<Created, ConfigError> {
    let config = dir.join(CONFIG_FILE);
    let key_file = dir.join(KEY_FILE);
    let data_dir = dir.join(DATA_DIR);
    for p in [&config, &key_file, &data_dir] {
        if p.exists() {
            return Err(ConfigError::Exists(p.clone()));
        }
    }
    fs::create_dir_all(dir).map_err(|e| ConfigError::Create(dir.to_owned(), e.kind()))?;
    FileKeyProvider::create(&key_file).map_err(ConfigError::Keys)?;
    fs::create_dir(&data_dir).map_err(|e| ConfigError::Create(data_dir.clone(), e.kind()))?;
    let text = format!(
        "# Document vault configuration, written by `vault init`.\n\
         # Relative paths are relative to this file's directory.\n\n\
         [keys]\n\
         # Root key file (mode 0600). Keep it out of backups of the data directory.\n\
         file = \"{KEY_FILE}\"\n\n\
         [storage]\n\
         # Local blobs and the SQLite metadata database.\n\
         data_dir = \"{DATA_DIR}\"\n"
    );
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&config)
        .map_err(|e| ConfigError::Create(config.clone(), e.kind()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| ConfigError::Create(config.clone(), e.kind()))?;
    Ok(Created {
        config,
        key_file,
        data_dir,
    })
}
