//! API keys and roles: who may call the vault, and as what.
//!
//! A key is `vk_<id>_<secret>`: a random 128-bit id (32 hex digits) that
//! names the row, and a random 256-bit secret (64 hex digits) of which only
//! the SHA-256 is stored. A fast hash is enough: the secret is full-entropy,
//! so there is nothing to brute-force. The comparison is constant-time.
//! Every failure (malformed, unknown, wrong secret, expired, revoked) is the
//! same [`Error::Unauthorized`].

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::audit::{Actor, Event, Outcome};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::meta::now_ms;
use crate::vault::Vault;

/// What a key may do (`docs/API.md` has the full matrix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Policies, keys, API keys, export, erasure, legal holds.
    Admin,
    /// Upload, list, read and delete documents; share links.
    Agent,
    /// Upload only: cannot list or read anything back.
    Uploader,
    /// The audit log only.
    Auditor,
    /// Purge and sweep only (retention jobs).
    Purge,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Agent,
        Role::Uploader,
        Role::Auditor,
        Role::Purge,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Uploader => "uploader",
            Role::Auditor => "auditor",
            Role::Purge => "purge",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(Error::InvalidArgument("unknown role"))
    }
}

/// A newly created key: the secret is shown once and never stored.
pub struct NewApiKey {
    /// The key's id (not secret; names it in audit records and revocation).
    pub id: String,
    /// The whole key, `vk_<id>_<secret>`, zeroized on drop.
    pub key: Zeroizing<String>,
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// Who an authenticated request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The key's tenant: the only tenant the request can reach.
    pub tenant: TenantId,
    /// The key's role.
    pub role: Role,
    /// The key's id.
    pub key_id: String,
}

impl Principal {
    /// The audit actor for this principal: `api-key:<id>`.
    pub fn actor(&self) -> Actor {
        Actor::new(&format!("api-key:{}", self.key_id)).unwrap_or_else(|_| Actor::operator())
    }
}

pub(crate) fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits `vk_<32 hex>_<64 hex>`.
fn parse(key: &str) -> Option<(&str, &str)> {
    parse_token("vk_", key)
}

/// A random 128-bit id and 256-bit secret, both as lowercase hex.
pub(crate) fn new_token() -> Result<(String, Zeroizing<String>)> {
    let mut id_bytes = [0u8; 16];
    let mut secret_bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut id_bytes).map_err(|_| Error::Rng)?;
    getrandom::fill(&mut secret_bytes[..]).map_err(|_| Error::Rng)?;
    Ok((
        hex::encode(id_bytes),
        Zeroizing::new(hex::encode(&secret_bytes[..])),
    ))
}

/// Compares a presented secret's hash with a stored one in constant time.
pub(crate) fn hash_matches(presented: &[u8; 32], stored: &[u8]) -> bool {
    presented.as_slice().ct_eq(stored).into()
}

/// Splits `<prefix><32 hex>_<64 hex>` (lowercase hex only).
pub(crate) fn parse_token<'a>(prefix: &str, key: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = key.strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    (hex_ok(id, 32) && hex_ok(secret, 64)).then_some((id, secret))
}

impl Vault {
    /// Creates an API key for `tenant` with `role`, valid until
    /// `expires_at_ms` (or forever), and returns it once. Audited.
    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        role: Role,
        expires_at_ms: Option<i64>,
        actor: &Actor,
    ) -> Result<NewApiKey> {
        let meta = self.meta();
        if !meta.tenant_exists(tenant).await? {
            return Err(Error::NotFound);
        }
        let (id, secret) = new_token()?;
        let mut tx = meta.begin().await?;
        let event = Event {
            tenant: Some(tenant),
            actor,
            action: "api_key.create",
            target: format!("api-key:{id} role:{}", role.as_str()),
            outcome: Outcome::Ok,
        };
        meta.append_audit(&mut tx, self.audit_key(), &event).await?;
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, role, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(tenant.to_string())
        .bind(role.as_str())
        .bind(hash(&secret).to_vec())
        .bind(now_ms())
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let key = Zeroizing::new(format!("vk_{id}_{}", secret.as_str()));
        Ok(NewApiKey { id, key })
    }

    /// Checks a presented key. Every failure is [`Error::Unauthorized`].
    pub async fn authenticate(&self, key: &str) -> Result<Principal> {
        let (id, secret) = parse(key).ok_or(Error::Unauthorized)?;
        let row = sqlx::query(
            "SELECT tenant_id, role, secret_hash, expires_at, revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.meta().pool())
        .await?;
        // Hash even for an unknown id, so timing does not tell ids apart.
        let presented = hash(secret);
        let Some(row) = row else {
            let _ = presented.ct_eq(&[0u8; 32]);
            return Err(Error::Unauthorized);
        };
        let stored: Vec<u8> = row.try_get(2)?;
        let matches = hash_matches(&presented, &stored);
        let expires: Option<i64> = row.try_get(3)?;
        let revoked: Option<i64> = row.try_get(4)?;
        let now = now_ms();
        if !matches || revoked.is_some() || expires.is_some_and(|e| e <= now) {
            return Err(Error::Unauthorized);
        }
        Ok(Principal {
            tenant: TenantId::parse(&row.try_get::<String, _>(0)?)
                .map_err(|_| Error::Corrupt("api key tenant"))?,
            role: row
                .try_get::<String, _>(1)?
                .parse()
                .map_err(|_| Error::Corrupt("api key role"))?,
            key_id: id.to_owned(),
        })
    }

    /// Revokes key `id` of `tenant` (another tenant's key is "not found").
    /// Audited.
    pub async fn revoke_api_key(&self, tenant: TenantId, id: &str, actor: &Actor) -> Result<()> {
        let meta = self.meta();
        let mut tx = meta.begin().await?;
        let event = Event {
            tenant: Some(tenant),
            actor,
            action: "api_key.revoke",
            target: format!("api-key:{id}"),
            outcome: Outcome::Ok,
        };
        meta.append_audit(&mut tx, self.audit_key(), &event).await?;
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL")
            .bind(tenant.to_string())
            .bind(id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(Error::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_syntax() {
        let id = "0".repeat(32);
        let secret = "a".repeat(64);
        assert_eq!(
            parse(&format!("vk_{id}_{secret}")),
            Some((id.as_str(), secret.as_str()))
        );
        for bad in [
            "",
            "vk_",
            "vk_abc_def",
            &format!("xx_{id}_{secret}"),
            &format!("vk_{id}_{}", "A".repeat(64)),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(
            format!(
                "{:?}",
                NewApiKey {
                    id: "i".into(),
                    key: Zeroizing::new("vk_secret".into())
                }
            )
            .contains("REDACTED")
        );
    }
}
