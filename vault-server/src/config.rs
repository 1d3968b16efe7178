//! The configuration file (`vault.toml`) and `vault init`.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use vault_core::keys::FileKeyProvider;

/// Name of the configuration file `vault init` writes.
pub(crate) const CONFIG_FILE: &str = "vault.toml";
/// Name of the root key file `vault init` writes.
pub(crate) const KEY_FILE: &str = "root.key";
/// Name of the data directory `vault init` creates.
pub(crate) const DATA_DIR: &str = "data";

/// Why a configuration could not be loaded or created.
#[derive(Debug)]
pub(crate) enum ConfigError {
    Exists(PathBuf),
    Create(PathBuf, std::io::ErrorKind),
    Keys(vault_core::Error),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
    // Ciphertext, wrapped keys and applicant ids live here: owner only.
    std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o700)
        .create(&data_dir)
        .map_err(|e| ConfigError::Create(data_dir.clone(), e.kind()))?;
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
