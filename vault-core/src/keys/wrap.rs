//! Wrapping applicant keys under root keys and data keys under applicant
//! keys.

use std::fmt;

use super::provider::{KeyProvider, RootKeyVersion};
use crate::aead::{Backend, NONCE_LEN, TAG_LEN};
use crate::error::{Error, FormatError, Result};
use crate::ids::{ApplicantId, DocumentId, TenantId};
use crate::kdf::{KEK_DATA, Kdf, WRAP_AD_APPLICANT, WRAP_AD_DATA, WRAP_AD_SYSTEM, push_lp};
use crate::secret::{ApplicantKey, DataKey, KEY_LEN, Secret32, SystemKey};

/// Version byte of a key wrapped by vault-core itself.
const WRAP_VERSION: u8 = 1;
/// Length of a key wrapped by vault-core: version(1) nonce(12)
/// ciphertext(32) tag(16).
pub const WRAPPED_KEY_LEN: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;
/// Longest wrapped key accepted from storage (room for an external KMS's
/// ciphertext format).
pub const WRAPPED_KEY_MAX_LEN: usize = 4096;

/// A wrapped (encrypted) key. Keys wrapped by vault-core are
/// `0x01 || nonce || ciphertext || tag` ([`WRAPPED_KEY_LEN`] bytes); a
/// [`KeyProvider`] backed by an external KMS may store its own format, up to
/// [`WRAPPED_KEY_MAX_LEN`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(Vec<u8>);

impl WrappedKey {
    /// Wraps stored bytes, checking only their length (1 to
    /// [`WRAPPED_KEY_MAX_LEN`]); whoever unwraps checks the rest.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() || bytes.len() > WRAPPED_KEY_MAX_LEN {
            return Err(FormatError::WrappedKey.into());
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Seals `key` under `kek` with `aad` and a fresh random nonce.
    pub(crate) fn seal(kek: &Secret32, key: &[u8; KEY_LEN], aad: &[u8]) -> Result<Self> {
        let mut out = vec![0u8; WRAPPED_KEY_LEN];
        out[0] = WRAP_VERSION;
        let (nonce, rest) = out[1..].split_at_mut(NONCE_LEN);
        getrandom::fill(nonce).map_err(|_| Error::Rng)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Rng)?;
        let (ct, tag_out) = rest.split_at_mut(KEY_LEN);
        ct.copy_from_slice(key);
        let tag = Backend::default()
            .cipher(kek.expose())?
            .seal_in_place(&nonce, aad, ct)?;
        tag_out.copy_from_slice(&tag);
        Ok(Self(out))
    }

    /// Opens under `kek` with `aad`; any mismatch is
    /// [`Error::Authentication`].
    /// A malformed blob (wrong length or version) is
    /// [`Error::Authentication`] too: it can only come from tampering.
    pub(crate) fn open(&self, kek: &Secret32, aad: &[u8]) -> Result<Secret32> {
        if self.0.len() != WRAPPED_KEY_LEN || self.0[0] != WRAP_VERSION {
            return Err(Error::Authentication);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&self.0[1..1 + NONCE_LEN]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.0[1 + NONCE_LEN + KEY_LEN..]);
        let mut key = Secret32::zero();
        key.expose_mut()
            .copy_from_slice(&self.0[1 + NONCE_LEN..1 + NONCE_LEN + KEY_LEN]);
        Backend::default().cipher(kek.expose())?.open_in_place(
            &nonce,
            aad,
            key.expose_mut(),
            &tag,
        )?;
        Ok(key)
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrappedKey(..)")
    }
}

/// The ids an applicant key is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicantKeyId {
    /// The tenant.
    pub tenant: TenantId,
    /// The applicant within the tenant.
    pub applicant: ApplicantId,
    /// The applicant key's version (a new key gets a new version).
    pub version: u32,
}

impl ApplicantKeyId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.tenant.as_bytes());
        push_lp(out, self.applicant.as_str().as_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
    }
}

/// The ids a document data key is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataKeyId {
    /// The applicant key that wraps the data key.
    pub applicant_key: ApplicantKeyId,
    /// The document.
    pub document: DocumentId,
}

fn ad(label: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(label.len() + 200);
    v.extend_from_slice(label);
    v.push(0);
    v
}

/// Associated data of an applicant key wrapped under root key `root`:
/// `label || 0x00 || tenant(16) || be16(len) applicant || be32(version) || be32(root)`.
pub(crate) fn applicant_ad(id: &ApplicantKeyId, root: RootKeyVersion) -> Vec<u8> {
    let mut v = ad(WRAP_AD_APPLICANT);
    id.encode(&mut v);
    v.extend_from_slice(&root.get().to_be_bytes());
    v
}

/// Associated data of a data key:
/// `label || 0x00 || tenant(16) || be16(len) applicant || be32(version) || document(16)`.
fn data_ad(id: &DataKeyId) -> Vec<u8> {
    let mut v = ad(WRAP_AD_DATA);
    id.applicant_key.encode(&mut v);
    v.extend_from_slice(id.document.as_bytes());
    v
}

fn data_kek(key: &ApplicantKey) -> Secret32 {
    Kdf::new(&[], key.expose()).expand(KEK_DATA, &[])
}

/// Wraps an applicant key under root key `version` of `provider`.
pub fn wrap_applicant_key(
    provider: &dyn KeyProvider,
    version: RootKeyVersion,
    id: &ApplicantKeyId,
    key: &ApplicantKey,
) -> Result<WrappedKey> {
    provider.wrap(version, &key.0, &applicant_ad(id, version))
}

/// Unwraps an applicant key wrapped under root key `version`.
pub fn unwrap_applicant_key(
    provider: &dyn KeyProvider,
    version: RootKeyVersion,
    id: &ApplicantKeyId,
    wrapped: &WrappedKey,
) -> Result<ApplicantKey> {
    provider
        .unwrap(version, wrapped, &applicant_ad(id, version))
        .map(ApplicantKey)
}

/// Associated data of the vault's system key wrapped under root key `root`:
/// `label || 0x00 || be16(len) name || be32(root)`.
fn system_ad(name: &str, root: RootKeyVersion) -> Vec<u8> {
    let mut v = ad(WRAP_AD_SYSTEM);
    push_lp(&mut v, name.as_bytes());
    v.extend_from_slice(&root.get().to_be_bytes());
    v
}

/// Wraps the vault's system key `name` under root key `version`.
pub fn wrap_system_key(
    provider: &dyn KeyProvider,
    version: RootKeyVersion,
    name: &str,
    key: &SystemKey,
) -> Result<WrappedKey> {
    provider.wrap(version, &key.0, &system_ad(name, version))
}

/// Unwraps the vault's system key `name`.
pub fn unwrap_system_key(
    provider: &dyn KeyProvider,
    version: RootKeyVersion,
    name: &str,
    wrapped: &WrappedKey,
) -> Result<SystemKey> {
    provider
        .unwrap(version, wrapped, &system_ad(name, version))
        .map(SystemKey)
}

/// Wraps a document's data key under its applicant's key.
pub fn wrap_data_key(
    applicant_key: &ApplicantKey,
    id: &DataKeyId,
    key: &DataKey,
) -> Result<WrappedKey> {
    WrappedKey::seal(&data_kek(applicant_key), key.expose(), &data_ad(id))
}

/// Unwraps a document's data key.
pub fn unwrap_data_key(
    applicant_key: &ApplicantKey,
    id: &DataKeyId,
    wrapped: &WrappedKey,
) -> Result<DataKey> {
    wrapped
        .open(&data_kek(applicant_key), &data_ad(id))
        .map(DataKey)
}
