//! Share links: a one-document, view-only capability that expires by time
//! and by number of views, and can be revoked.
//!
//! A link's token is `vs_<id>_<secret>` (128-bit id, 256-bit secret, hex);
//! only the secret's SHA-256 is stored, compared in constant time. Every
//! redemption is counted and audited in one transaction before any byte is
//! served, so `max_views` is exact under concurrency.

use std::fmt;
use std::time::Duration;

use sqlx::Row;
use zeroize::Zeroizing;

use crate::audit::{Actor, Event, Outcome};
use crate::auth::{hash, hash_matches, new_token, parse_token};
use crate::error::{Error, Result};
use crate::ids::{DocumentId, TenantId};
use crate::meta::now_ms;
use crate::vault::{Tenant, Vault};

/// Longest lifetime of a share link (30 days).
pub const SHARE_LINK_TTL_MAX: Duration = Duration::from_secs(30 * 86_400);
/// Most views a share link may allow.
pub const SHARE_LINK_VIEWS_MAX: u32 = 1_000;

/// A newly created share link: the token is shown once and never stored.
pub struct NewShareLink {
    /// The link's id (not secret; names it in audit records and revocation).
    pub id: String,
    /// The whole token, `vs_<id>_<secret>`, zeroized on drop.
    pub token: Zeroizing<String>,
    /// When it stops working (Unix milliseconds).
    pub expires_at_ms: i64,
    /// How many times it can be used.
    pub max_views: u32,
}

impl fmt::Debug for NewShareLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewShareLink")
            .field("id", &self.id)
            .field("token", &"[REDACTED]")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("max_views", &self.max_views)
            .finish()
    }
}

/// What a redeemed link grants: reading one document of one tenant, as the
/// actor `share-link:<id>`.
#[derive(Debug)]
pub struct SharedDocument {
    /// The document's tenant, acting as the link.
    pub tenant: Tenant,
    /// The one document the link opens.
    pub document: DocumentId,
}

impl Tenant {
    /// Creates a link to document `id` valid for `ttl` (at most
    /// [`SHARE_LINK_TTL_MAX`]) and `max_views` uses (1 to
    /// [`SHARE_LINK_VIEWS_MAX`]). Audited.
    pub async fn create_share_link(
        &self,
        id: DocumentId,
        ttl: Duration,
        max_views: u32,
    ) -> Result<NewShareLink> {
        if ttl.is_zero() || ttl > SHARE_LINK_TTL_MAX {
            return Err(Error::InvalidArgument(
                "share link ttl must be 1 second to 30 days",
            ));
        }
        if max_views == 0 || max_views > SHARE_LINK_VIEWS_MAX {
            return Err(Error::InvalidArgument(
                "share link max_views must be 1-1000",
            ));
        }
        let meta = self.vault.meta();
        // Only a committed document of this tenant can be shared.
        meta.document(self.id, id).await?;
        let (link, secret) = new_token()?;
        let now = now_ms();
        let expires_at_ms = now.saturating_add(ttl.as_millis() as i64);
        let mut tx = meta.begin().await?;
        let event = self.event(
            "share_link.create",
            format!("share-link:{link} document:{id} max_views:{max_views}"),
            Outcome::Ok,
        );
        meta.append_audit(&mut tx, self.vault.audit_key(), &event)
            .await?;
        sqlx::query(
            "INSERT INTO share_links (id, tenant_id, document_id, secret_hash, created_at, expires_at, max_views) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&link)
        .bind(self.id.to_string())
        .bind(id.to_string())
        .bind(hash(&secret).to_vec())
        .bind(now)
        .bind(expires_at_ms)
        .bind(i64::from(max_views))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let token = Zeroizing::new(format!("vs_{link}_{}", secret.as_str()));
        Ok(NewShareLink {
            id: link,
            token,
            expires_at_ms,
            max_views,
        })
    }

    /// Revokes this tenant's share link `link` (another tenant's link, or
    /// one already revoked, is "not found"). Audited.
    pub async fn revoke_share_link(&self, link: &str) -> Result<()> {
        let meta = self.vault.meta();
        let mut tx = meta.begin().await?;
        let done = sqlx::query(
            "UPDATE share_links SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(self.id.to_string())
        .bind(link)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::NotFound);
        }
        let event = self.event(
            "share_link.revoke",
            format!("share-link:{link}"),
            Outcome::Ok,
        );
        meta.append_audit(&mut tx, self.vault.audit_key(), &event)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Vault {
    /// Checks a presented share-link token and, when `count_view` is set,
    /// uses up one view (audited in the same transaction).
    ///
    /// A token that is malformed or whose secret does not match is
    /// [`Error::NotFound`]; a genuine link that has expired, been revoked or
    /// used up is [`Error::LinkExpired`] (only the holder of the full token
    /// can learn that).
    pub async fn redeem_share_link(&self, token: &str, count_view: bool) -> Result<SharedDocument> {
        let (link, secret) = parse_token("vs_", token).ok_or(Error::NotFound)?;
        let meta = self.meta();
        let row = sqlx::query(
            "SELECT tenant_id, document_id, secret_hash, expires_at, max_views, views, revoked_at FROM share_links WHERE id = $1",
        )
        .bind(link)
        .fetch_optional(meta.pool())
        .await?;
        let presented = hash(secret);
        let Some(row) = row else {
            let _ = hash_matches(&presented, &[0u8; 32]);
            return Err(Error::NotFound);
        };
        let stored: Vec<u8> = row.try_get(2)?;
        if !hash_matches(&presented, &stored) {
            return Err(Error::NotFound);
        }
        let tenant = TenantId::parse(&row.try_get::<String, _>(0)?)
            .map_err(|_| Error::Corrupt("share link tenant"))?;
        let document = DocumentId::parse(&row.try_get::<String, _>(1)?)
            .map_err(|_| Error::Corrupt("share link document"))?;
        let expires: i64 = row.try_get(3)?;
        let max_views: i64 = row.try_get(4)?;
        let views: i64 = row.try_get(5)?;
        let revoked: Option<i64> = row.try_get(6)?;
        let now = now_ms();
        let actor = Actor::new(&format!("share-link:{link}"))?;
        if revoked.is_some() || expires <= now || views >= max_views {
            self.audit(Event {
                tenant: Some(tenant),
                actor: &actor,
                action: "share_link.redeem",
                target: format!("share-link:{link} document:{document}"),
                outcome: Outcome::Denied,
            })
            .await?;
            return Err(Error::LinkExpired);
        }
        if count_view {
            let mut tx = meta.begin().await?;
            // The conditions again, atomically: concurrent redemptions
            // cannot exceed max_views.
            let done = sqlx::query(
                "UPDATE share_links SET views = views + 1 WHERE id = $1 AND views < max_views AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(link)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(Error::LinkExpired);
            }
            let event = Event {
                tenant: Some(tenant),
                actor: &actor,
                action: "share_link.redeem",
                target: format!("share-link:{link} document:{document} view:{}", views + 1),
                outcome: Outcome::Ok,
            };
            meta.append_audit(&mut tx, self.audit_key(), &event).await?;
            tx.commit().await?;
        }
        Ok(SharedDocument {
            tenant: self.tenant(tenant, actor).await?,
            document,
        })
    }

    /// Records a refused request (wrong role, bad credentials) in the audit
    /// log: `action` names the operation, `target` ids only.
    pub async fn audit_denied(
        &self,
        tenant: Option<TenantId>,
        actor: &Actor,
        action: &'static str,
        target: String,
    ) -> Result<()> {
        self.audit(Event {
            tenant,
            actor,
            action,
            target,
            outcome: Outcome::Denied,
        })
        .await
    }
}
