//! The vault façade: every operation on stored documents, scoped by tenant.
//!
//! A [`Vault`] is opened from a [`VaultConfig`], which cannot be built
//! without a key provider. Tenant data is reachable only through a
//! [`Tenant`] handle, obtained from [`Vault::tenant`] for a tenant that
//! exists: every query under it carries the tenant id, so a caller cannot
//! forget the scope, and another tenant's ids are simply "not found".

mod documents;
mod export;
mod lifecycle;
mod share;
mod sweep;

use std::fmt;
use std::sync::Arc;

pub use documents::{DocumentInfo, DocumentPage, Download, LIST_LIMIT_MAX, ListCursor, PutRequest};
pub use export::Export;
pub use lifecycle::{ErasureReceipt, PurgeReport, RotationReport};
pub use share::{NewShareLink, SHARE_LINK_TTL_MAX, SHARE_LINK_VIEWS_MAX, SharedDocument};
pub use sweep::{StorageReport, SweepReport};

use crate::aead::Backend;
use crate::audit::{Actor, Event, Outcome};
use crate::error::{Error, Result};
use crate::format::{SealParams, SegmentSize};
use crate::ids::TenantId;
use crate::kdf::{AUDIT_MAC_KEY, Kdf, LEDGER_KEY};
use crate::keys::KeyProvider;
use crate::keys::{RootKeyVersion, unwrap_system_key, wrap_system_key};
use crate::meta::Metadata;
use crate::secret::{Secret32, SystemKey};
use crate::store::{BlobStore, BlobStoreConfig};

/// Everything needed to open a vault.
#[derive(Clone)]
pub struct VaultConfig {
    blobs: BlobStoreConfig,
    metadata_url: String,
    keys: Arc<dyn KeyProvider>,
    segment_size: SegmentSize,
    backend: Backend,
}

impl VaultConfig {
    /// A configuration with the default segment size (64 KiB) and backend.
    /// `metadata_url` is `sqlite://PATH` or `postgres://…`.
    pub fn new(
        blobs: BlobStoreConfig,
        metadata_url: impl Into<String>,
        keys: Arc<dyn KeyProvider>,
    ) -> Self {
        Self {
            blobs,
            metadata_url: metadata_url.into(),
            keys,
            segment_size: SegmentSize::DEFAULT,
            backend: Backend::default(),
        }
    }

    /// Uses another plaintext segment size for new documents.
    pub fn with_segment_size(mut self, segment_size: SegmentSize) -> Self {
        self.segment_size = segment_size;
        self
    }

    /// Uses another key provider (for example after adding a root key
    /// version to the key file).
    pub fn with_keys(mut self, keys: Arc<dyn KeyProvider>) -> Self {
        self.keys = keys;
        self
    }

    /// Uses another AES-256-GCM backend.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
}

impl fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultConfig")
            .field("blobs", &self.blobs)
            .field("metadata_url", &mask_url_password(&self.metadata_url))
            .field("keys", &self.keys)
            .field("segment_size", &self.segment_size)
            .field("backend", &self.backend)
            .finish()
    }
}

/// `scheme://user:secret@host/…` with the secret replaced by `******`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:******@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// An open vault. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    blobs: BlobStore,
    meta: Metadata,
    keys: Arc<dyn KeyProvider>,
    params: SealParams,
    /// MAC key of the audit log (from the system key).
    audit_key: Secret32,
    /// Key of the erasure ledger's applicant references (from the system key).
    ledger_key: Secret32,
}

/// Name of the system key row.
const SYSTEM_KEY: &str = "vault-key-1";

/// Loads the system key, creating and wrapping it under the current root
/// key on first open.
async fn system_key(meta: &Metadata, keys: &dyn KeyProvider) -> Result<SystemKey> {
    if meta.system_key(SYSTEM_KEY).await?.is_none() {
        let key = SystemKey::generate()?;
        let root = keys.current_version();
        let wrapped = wrap_system_key(keys, root, SYSTEM_KEY, &key)?;
        meta.insert_system_key_if_absent(SYSTEM_KEY, root.get(), &wrapped)
            .await?;
    }
    let (root, wrapped) = meta
        .system_key(SYSTEM_KEY)
        .await?
        .ok_or(Error::Corrupt("system key vanished"))?;
    let root = RootKeyVersion::new(root).map_err(|_| Error::Corrupt("root key version 0"))?;
    unwrap_system_key(keys, root, SYSTEM_KEY, &wrapped)
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("blobs", &self.inner.blobs)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

/// Longest tenant name, in bytes.
const TENANT_NAME_MAX: usize = 200;

impl Vault {
    /// Opens the blob store and the metadata database (running migrations).
    pub async fn open(config: VaultConfig) -> Result<Self> {
        let blobs = BlobStore::open(&config.blobs)?;
        let meta = Metadata::connect(&config.metadata_url).await?;
        let system = system_key(&meta, &*config.keys).await?;
        let kdf = Kdf::new(&[], system.expose());
        Ok(Self {
            inner: Arc::new(Inner {
                blobs,
                meta,
                keys: config.keys,
                params: SealParams {
                    segment_size: config.segment_size,
                    backend: config.backend,
                },
                audit_key: kdf.expand(AUDIT_MAC_KEY, &[]),
                ledger_key: kdf.expand(LEDGER_KEY, &[]),
            }),
        })
    }

    /// Records `event` in its own transaction (for actions that change
    /// nothing in the database, such as reads and exports): if the record
    /// cannot be written, the caller must not go on.
    pub(crate) async fn audit(&self, event: Event<'_>) -> Result<()> {
        let meta = &self.inner.meta;
        let mut tx = meta.begin().await?;
        meta.append_audit(&mut tx, &self.inner.audit_key, &event)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates a tenant (a leasing company) and returns its id. The name
    /// identifies the company, not a person; it must be unique.
    pub async fn create_tenant(&self, name: &str, actor: &Actor) -> Result<TenantId> {
        if name.is_empty() || name.len() > TENANT_NAME_MAX || name.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(
                "tenant name must be 1-200 bytes without control characters",
            ));
        }
        let id = TenantId::random();
        let meta = &self.inner.meta;
        let mut tx = meta.begin().await?;
        let event = Event {
            tenant: Some(id),
            actor,
            action: "tenant.create",
            target: format!("tenant:{id}"),
            outcome: Outcome::Ok,
        };
        meta.append_audit(&mut tx, &self.inner.audit_key, &event)
            .await?;
        meta.insert_tenant(&mut tx, id, name).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The handle through which one tenant's data is reached, acting as
    /// `actor` (recorded in the audit log for every privileged action);
    /// [`Error::NotFound`] if no such tenant exists.
    pub async fn tenant(&self, id: TenantId, actor: Actor) -> Result<Tenant> {
        if !self.inner.meta.tenant_exists(id).await? {
            return Err(Error::NotFound);
        }
        Ok(Tenant {
            vault: self.clone(),
            id,
            actor,
        })
    }

    /// Checks that the metadata database answers and the blob store lists.
    pub async fn check_ready(&self) -> Result<()> {
        self.inner.meta.ping().await?;
        use futures::StreamExt;
        let mut l = self.inner.blobs.list();
        match l.next().await {
            // A blob removed between listing and reading its metadata (a
            // purge or deletion running) still shows the store answering.
            None | Some(Ok(_)) | Some(Err(Error::NotFound)) => Ok(()),
            Some(Err(e)) => Err(e),
        }
    }

    pub(crate) fn meta(&self) -> &Metadata {
        &self.inner.meta
    }

    pub(crate) fn audit_key(&self) -> &Secret32 {
        &self.inner.audit_key
    }

    /// Closes the database connections.
    pub async fn close(&self) {
        self.inner.meta.close().await;
    }
}

/// One tenant's view of the vault. Every operation is confined to this
/// tenant: documents and applicants of any other tenant are "not found".
#[derive(Clone)]
pub struct Tenant {
    vault: Vault,
    id: TenantId,
    actor: Actor,
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// The tenant's id.
    pub fn id(&self) -> TenantId {
        self.id
    }

    /// Who acts through this handle.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    fn inner(&self) -> &Inner {
        &self.vault.inner
    }

    pub(crate) fn event(
        &self,
        action: &'static str,
        target: String,
        outcome: Outcome,
    ) -> Event<'_> {
        Event {
            tenant: Some(self.id),
            actor: &self.actor,
            action,
            target,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url_password("postgres://vault:s3cret@db.example:5432/vault?sslmode=require"),
            "postgres://vault:******@db.example:5432/vault?sslmode=require"
        );
        assert_eq!(
            mask_url_password("postgres://127.0.0.1/test"),
            "postgres://127.0.0.1/test"
        );
        assert_eq!(
            mask_url_password("sqlite:///var/lib/vault/meta.db"),
            "sqlite:///var/lib/vault/meta.db"
        );
        assert_eq!(
            mask_url_password("postgres://u:p@w@h/db"),
            "postgres://u:******@h/db"
        );
    }
}
