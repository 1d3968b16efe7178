//! Root keys and the providers that hold them.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use super::wrap::WrappedKey;
use crate::error::{Error, Result};
use crate::kdf::{KEK_APPLICANT, Kdf};
use crate::secret::{KEY_LEN, RootKey, Secret32};

/// The environment variable [`LocalKeyProvider::from_env`] reads.
pub const ENV_ROOT_KEYS: &str = "VAULT_ROOT_KEYS";

/// A root key version (1, 2, …). Wraps record the version they were made
/// under, so several versions can be loaded during a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RootKeyVersion(u32);

impl RootKeyVersion {
    /// A version; 0 is not a version.
    pub fn new(v: u32) -> Result<Self> {
        if v == 0 {
            Err(Error::InvalidArgument("root key versions start at 1"))
        } else {
            Ok(Self(v))
        }
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Holds root keys and wraps/unwraps applicant keys under them.
///
/// A provider never hands out a root key: an external KMS (AWS KMS, Vault
/// Transit, GCP KMS) implements this trait by calling its own encrypt and
/// decrypt with `aad` as the encryption context.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The version new wraps are made under (the newest loaded).
    fn current_version(&self) -> RootKeyVersion;

    /// Every loaded version, ascending.
    fn versions(&self) -> Vec<RootKeyVersion>;

    /// Wraps `key` under root key `version`, binding `aad`.
    fn wrap(&self, version: RootKeyVersion, key: &Secret32, aad: &[u8]) -> Result<WrappedKey>;

    /// Unwraps a key wrapped under root key `version` with the same `aad`.
    /// A wrong version, wrong `aad` or tampered bytes give
    /// [`Error::Authentication`]; a version not loaded gives
    /// [`Error::UnknownKeyVersion`].
    fn unwrap(&self, version: RootKeyVersion, wrapped: &WrappedKey, aad: &[u8])
    -> Result<Secret32>;
}

/// A provider holding root keys in process memory, loaded from a key file
/// ([`FileKeyProvider`]) or the environment ([`LocalKeyProvider::from_env`]).
///
/// Each root key wraps through its own key-encryption key, HKDF-SHA256(root
/// key, label `vault/v1/kek/applicant-key`), so the root key itself is
/// never used directly as an AES key.
pub struct LocalKeyProvider {
    keks: BTreeMap<RootKeyVersion, Secret32>,
    current: RootKeyVersion,
}

impl fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field(
                "versions",
                &self.keks.keys().map(|v| v.get()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl LocalKeyProvider {
    /// A provider over the given root keys; at least one is needed.
    pub fn new(keys: Vec<(RootKeyVersion, RootKey)>) -> Result<Self> {
        let mut keks = BTreeMap::new();
        for (v, k) in keys {
            let kek = Kdf::new(&[], k.expose()).expand(KEK_APPLICANT, &[]);
            if keks.insert(v, kek).is_some() {
                return Err(Error::KeyProvider(format!(
                    "root key version {} appears twice",
                    v.get()
                )));
            }
        }
        let current = *keks
            .keys()
            .next_back()
            .ok_or_else(|| Error::KeyProvider("no root key loaded".into()))?;
        Ok(Self { keks, current })
    }

    /// Parses root keys from the `VAULT_ROOT_KEYS` environment variable,
    /// in the syntax of [`LocalKeyProvider::parse`].
    pub fn from_env() -> Result<Self> {
        let value = Zeroizing::new(std::env::var(ENV_ROOT_KEYS).map_err(|_| {
            Error::KeyProvider(format!("{ENV_ROOT_KEYS} is not set or not valid UTF-8"))
        })?);
        Self::parse(&value)
    }

    /// Parses root keys written as `VERSION:HEX` entries (a version from 1,
    /// a colon, 64 hex digits), separated by newlines, commas or spaces;
    /// `#` starts a comment that runs to the end of the line.
    pub fn parse(text: &str) -> Result<Self> {
        let entries = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or(""))
            .flat_map(|line| line.split(|c: char| c == ',' || c.is_whitespace()));
        Self::new(parse_entries(entries)?)
    }

    fn kek(&self, version: RootKeyVersion) -> Result<&Secret32> {
        self.keks
            .get(&version)
            .ok_or(Error::UnknownKeyVersion(version.get()))
    }
}

impl KeyProvider for LocalKeyProvider {
    fn current_version(&self) -> RootKeyVersion {
        self.current
    }

    fn versions(&self) -> Vec<RootKeyVersion> {
        self.keks.keys().copied().collect()
    }

    fn wrap(&self, version: RootKeyVersion, key: &Secret32, aad: &[u8]) -> Result<WrappedKey> {
        WrappedKey::seal(self.kek(version)?, key.expose(), aad)
    }

    fn unwrap(
        &self,
        version: RootKeyVersion,
        wrapped: &WrappedKey,
        aad: &[u8],
    ) -> Result<Secret32> {
        wrapped.open(self.kek(version)?, aad)
    }
}

/// Parses `VERSION:HEX` entries; blank entries are skipped.
fn parse_entries<'a>(
    entries: impl Iterator<Item = &'a str>,
) -> Result<Vec<(RootKeyVersion, RootKey)>> {
    let mut keys = Vec::new();
    for (n, entry) in entries.filter(|e| !e.trim().is_empty()).enumerate() {
        let entry = entry.trim();
        let bad = || {
            Error::KeyProvider(format!(
                "root key entry {} is not VERSION:64-HEX-DIGITS",
                n + 1
            ))
        };
        let (v, hex_key) = entry.split_once(':').ok_or_else(bad)?;
        let v: u32 = v.trim().parse().map_err(|_| bad())?;
        let version = RootKeyVersion::new(v).map_err(|_| bad())?;
        let mut key = Secret32::zero();
        hex::decode_to_slice(hex_key.trim(), key.expose_mut()).map_err(|_| bad())?;
        keys.push((version, RootKey(key)));
    }
    Ok(keys)
}

/// Loads and creates root key files.
///
/// A key file holds one `VERSION:HEX` line per root key, in the syntax of
/// [`LocalKeyProvider::parse`]. It must be a regular file readable by its owner
/// only (mode 0600 or stricter); any access for group or others is refused.
#[derive(Debug)]
pub struct FileKeyProvider;

impl FileKeyProvider {
    /// Loads every root key in the file at `path`.
    ///
    /// The file is opened once, without following a symbolic link, and its
    /// type and mode are checked on the open handle, so it cannot be swapped
    /// between the check and the read. It must be a regular file with no
    /// permission bit for group or others.
    pub fn load(path: &Path) -> Result<LocalKeyProvider> {
        let read_err = |e: std::io::Error| {
            Error::KeyProvider(format!(
                "cannot read key file {}: {}",
                path.display(),
                e.kind()
            ))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(Error::KeyProvider(format!(
                "key file {} is not a regular file",
                path.display()
            )));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyProvider(format!(
                "key file {} has mode {:o}: it is accessible by group or others; run `chmod 600` on it",
                path.display(),
                mode
            )));
        }
        let mut text = Zeroizing::new(String::new());
        std::io::Read::read_to_string(&mut file, &mut text).map_err(read_err)?;
        LocalKeyProvider::parse(&text)
    }

    /// Creates a new key file at `path` holding one random root key
    /// (version 1), with mode 0600, synced to disk. Refuses to overwrite an
    /// existing file.
    pub fn create(path: &Path) -> Result<()> {
        let key = RootKey::generate()?;
        let mut text = Zeroizing::new(String::with_capacity(160));
        text.push_str("# Document vault root keys: VERSION:HEX. Keep this file 0600 and out of\n");
        text.push_str("# backups of the metadata database and the blob store.\n");
        text.push_str("1:");
        let mut hex_buf = Zeroizing::new([0u8; 2 * KEY_LEN]);
        hex::encode_to_slice(key.expose(), &mut hex_buf[..]).map_err(|_| Error::Rng)?;
        text.push_str(std::str::from_utf8(&hex_buf[..]).map_err(|_| Error::Rng)?);
        text.push('\n');
        let io_err = |e: std::io::Error| {
            Error::KeyProvider(format!(
                "cannot create key file {}: {}",
                path.display(),
                e.kind()
            ))
        };
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err)?;
        f.write_all(text.as_bytes()).map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err)?;
        }
        Ok(())
    }

    /// Appends a new random root key version (one above the highest) to
    /// the key file at `path`, atomically (a new 0600 file, synced, renamed
    /// over the old one, directory synced). Returns the new version. The
    /// vault wraps new keys under it once reopened; `rotate_root_key` moves
    /// every existing wrap to it.
    pub fn add_version(path: &Path) -> Result<RootKeyVersion> {
        let current = Self::load(path)?;
        let next = current
            .current_version()
            .get()
            .checked_add(1)
            .ok_or_else(|| Error::KeyProvider("no root key version left".into()))?;
        let key = RootKey::generate()?;
        let mut text = Zeroizing::new(fs::read_to_string(path).map_err(|e| {
            Error::KeyProvider(format!(
                "cannot read key file {}: {}",
                path.display(),
                e.kind()
            ))
        })?);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let mut hex_buf = Zeroizing::new([0u8; 2 * KEY_LEN]);
        hex::encode_to_slice(key.expose(), &mut hex_buf[..]).map_err(|_| Error::Rng)?;
        text.push_str(&format!("{next}:"));
        text.push_str(std::str::from_utf8(&hex_buf[..]).map_err(|_| Error::Rng)?);
        text.push('\n');
        Self::replace(path, &text)?;
        RootKeyVersion::new(next)
    }

    /// Removes root key version `version` from the key file (destroying it:
    /// wraps under it can no longer be opened). Check
    /// `Vault::root_key_usage` first. Refuses to remove the last version.
    pub fn remove_version(path: &Path, version: RootKeyVersion) -> Result<()> {
        let loaded = Self::load(path)?;
        if !loaded.versions().contains(&version) {
            return Err(Error::UnknownKeyVersion(version.get()));
        }
        if loaded.versions().len() == 1 {
            return Err(Error::KeyProvider(
                "refusing to remove the only root key".into(),
            ));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| {
            Error::KeyProvider(format!(
                "cannot read key file {}: {}",
                path.display(),
                e.kind()
            ))
        })?);
        let prefix = format!("{}:", version.get());
        let kept: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with(&prefix))
            .map(|l| format!("{l}\n"))
            .collect();
        Self::replace(path, &Zeroizing::new(kept))
    }

    /// Writes `text` to a new 0600 file beside `path`, syncs it, renames it
    /// over `path`, and syncs the directory.
    fn replace(path: &Path, text: &str) -> Result<()> {
        let tmp = path.with_extension("tmp-new");
        let io_err = |e: std::io::Error| {
            Error::KeyProvider(format!(
                "cannot write key file {}: {}",
                path.display(),
                e.kind()
            ))
        };
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err)?;
        f.write_all(text.as_bytes()).map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        fs::rename(&tmp, path).map_err(io_err)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err)?;
        }
        Ok(())
    }
}
