//! Who may do what: the one role table, the bearer-key extractor, and the
//! audit record of every refusal.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use vault_core::audit::Actor;
use vault_core::auth::{Principal, Role};
use vault_core::vault::Tenant;

use super::problem::Problem;
use super::{AppState, ClientAddr};

/// Every protected operation of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Upload,
    Read,
    List,
    DeleteDocument,
    ShareLink,
    CloseApplication,
    LegalHold,
    Erase,
    Export,
    ReadPolicy,
    WritePolicy,
    Purge,
    ApiKeys,
    Audit,
}

impl Op {
    /// The audit action recorded when the operation is refused.
    pub(crate) fn action(self) -> &'static str {
        match self {
            Op::Upload => "http.upload",
            Op::Read => "http.read",
            Op::List => "http.list",
            Op::DeleteDocument => "http.delete",
            Op::ShareLink => "http.share_link",
            Op::CloseApplication => "http.close",
            Op::LegalHold => "http.legal_hold",
            Op::Erase => "http.erase",
            Op::Export => "http.export",
            Op::ReadPolicy => "http.policy_read",
            Op::WritePolicy => "http.policy_write",
            Op::Purge => "http.purge",
            Op::ApiKeys => "http.api_keys",
            Op::Audit => "http.audit",
        }
    }
}

/// The role table (`docs/API.md`, "Roles"). Deny by default: an operation
/// a role is not listed for is refused.
pub(crate) fn allowed(role: Role, op: Op) -> bool {
    use Op::*;
    match role {
        Role::Admin => matches!(
            op,
            ReadPolicy | WritePolicy | ApiKeys | Export | Erase | LegalHold | CloseApplication
        ),
        Role::Agent => matches!(
            op,
            Upload | Read | List | DeleteDocument | ShareLink | CloseApplication
        ),
        Role::Uploader => matches!(op, Upload),
        Role::Auditor => matches!(op, Audit),
        Role::Purge => matches!(op, Purge),
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) principal: Principal,
    state: AppState,
}

impl Caller {
    /// The caller's tenant handle, if its role allows `op`; otherwise the
    /// refusal is audited and the answer is 403.
    pub(crate) async fn tenant_for(&self, op: Op) -> Result<Tenant, Problem> {
        let p = &self.principal;
        if !allowed(p.role, op) {
            let _ = self
                .state
                .vault
                .audit_denied(
                    Some(p.tenant),
                    &p.actor(),
                    op.action(),
                    format!("role:{}", p.role.as_str()),
                )
                .await;
            return Err(Problem::Forbidden);
        }
        Ok(self.state.vault.tenant(p.tenant, p.actor()).await?)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        let Some(key) = key else {
            audit_unauthenticated(state, parts, None).await;
            return Err(Problem::Unauthorized);
        };
        let principal = match state.vault.authenticate(key).await {
            Ok(p) => p,
            Err(vault_core::Error::Unauthorized) => {
                audit_unauthenticated(state, parts, key_id(key)).await;
                return Err(Problem::Unauthorized);
            }
            Err(e) => return Err(e.into()),
        };
        state.limiter.check_key(&principal.key_id)?;
        Ok(Caller {
            principal,
            state: state.clone(),
        })
    }
}

/// The id part of a presented key, if it looks like one (the secret never
/// leaves this function).
fn key_id(key: &str) -> Option<&str> {
    let id = key.strip_prefix("vk_")?.split('_').next()?;
    super::is_hex_id(id).then_some(id)
}

async fn audit_unauthenticated(state: &AppState, parts: &Parts, key: Option<&str>) {
    let route = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let client = parts
        .extensions
        .get::<ClientAddr>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let target = format!(
        "route:{} {} key:{} client:{}",
        parts.method,
        route,
        key.unwrap_or("none"),
        client
    );
    let _ = state
        .vault
        .audit_denied(
            None,
            &Actor::new("anonymous").unwrap_or_else(|_| Actor::operator()),
            "http.unauthenticated",
            target,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploader_can_only_upload() {
        for op in [
            Op::Read,
            Op::List,
            Op::DeleteDocument,
            Op::ShareLink,
            Op::Export,
            Op::Audit,
        ] {
            assert!(!allowed(Role::Uploader, op), "{op:?}");
        }
        assert!(allowed(Role::Uploader, Op::Upload));
    }

    #[test]
    fn key_ids_never_include_the_secret() {
        let key = format!("vk_{}_{}", "a".repeat(32), "b".repeat(64));
        assert_eq!(key_id(&key), Some("a".repeat(32).as_str()));
        assert_eq!(key_id("garbage"), None);
    }
}
