//! Tenant administration: retention policy, purge, API keys, audit log.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use vault_core::auth::Role;
use vault_core::category::Category;
use vault_core::retention::RetentionPolicy;

use super::access::{Caller, Op};
use super::problem::{ApiResult, Problem};
use super::{AppState, Whole, json_body};
use crate::time::{in_range, now_ms, parse_time, rfc3339};

fn policy_json(p: &RetentionPolicy) -> serde_json::Value {
    serde_json::json!({
        "inactivity_days": p.inactivity_days,
        "retain_days": p.retain_days.iter().map(|(c, d)| (c.as_str().to_owned(), serde_json::Value::from(*d))).collect::<serde_json::Map<_, _>>(),
    })
}

/// `GET /v1/retention-policy`
pub(crate) async fn get_policy(caller: Caller) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::ReadPolicy).await?;
    Ok(Json(policy_json(&tenant.retention_policy().await?)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    inactivity_days: Whole<u32>,
    retain_days: BTreeMap<String, Whole<u32>>,
}

/// `PUT /v1/retention-policy`: replaces the policy (categories left out
/// keep the documented defaults).
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::WritePolicy).await?;
    let b: PolicyBody = json_body(&state, &headers, body).await?;
    let mut policy = RetentionPolicy {
        inactivity_days: b.inactivity_days.0,
        ..RetentionPolicy::default()
    };
    for (name, days) in b.retain_days {
        let c: Category = name
            .parse()
            .map_err(|_| Problem::BadRequest("unknown category"))?;
        policy.retain_days.insert(c, days.0);
    }
    tenant.set_retention_policy(&policy).await?;
    Ok(Json(policy_json(&tenant.retention_policy().await?)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    as_of: Option<serde_json::Value>,
    #[serde(default)]
    dry_run: bool,
}

fn time_value(v: &serde_json::Value) -> ApiResult<i64> {
    let bad = Problem::BadRequest("malformed time (Unix milliseconds or RFC 3339, years 1-9999)");
    let ms = match v {
        serde_json::Value::Number(n) => super::whole_i64(n).ok_or(bad)?,
        serde_json::Value::String(s) => parse_time(s).map_err(|_| bad)?,
        _ => return Err(bad),
    };
    in_range(ms).map_err(|_| bad)
}

/// `POST /v1/purge` `{"as_of": ..., "dry_run": true}`
pub(crate) async fn purge(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::Purge).await?;
    let b: PurgeBody = json_body(&state, &headers, body).await?;
    let now = now_ms();
    let as_of = b.as_of.as_ref().map(time_value).transpose()?.unwrap_or(now);
    if as_of > now + 60_000 && !b.dry_run {
        return Err(Problem::BadRequest(
            "as_of is in the future: only a dry run may look ahead",
        ));
    }
    let r = tenant.purge(as_of, b.dry_run).await?;
    Ok(Json(serde_json::json!({
        "as_of": rfc3339(r.as_of_ms),
        "dry_run": r.dry_run,
        "count": r.documents.len(),
        "documents": r.documents.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "by_category": r.by_category.iter().map(|(c, n)| (c.as_str().to_owned(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
        "held": r.held,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    role: String,
    expires_at: Option<serde_json::Value>,
}

/// `POST /v1/api-keys` `{"role": "agent", "expires_at": "..."}`: the key
/// is in this response only.
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::ApiKeys).await?;
    let b: NewKeyBody = json_body(&state, &headers, body).await?;
    let role: Role = b
        .role
        .parse()
        .map_err(|_| Problem::BadRequest("unknown role"))?;
    let expires = b.expires_at.as_ref().map(time_value).transpose()?;
    if expires.is_some_and(|e| e <= now_ms()) {
        return Err(Problem::BadRequest("expires_at is in the past"));
    }
    let key = state
        .vault
        .create_api_key(tenant.id(), role, expires, tenant.actor())
        .await?;
    let mut resp = (
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": key.id,
            "api_key": key.key.as_str(),
            "role": role.as_str(),
            "expires_at": expires.map(rfc3339),
        })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `DELETE /v1/api-keys/{id}`
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = caller.tenant_for(Op::ApiKeys).await?;
    let id = super::hex_id(&id, "malformed api key id")?;
    state
        .vault
        .revoke_api_key(tenant.id(), id, tenant.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

/// `GET /v1/audit?after=SEQ&limit=N`: this tenant's records.
pub(crate) async fn audit(
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::Audit).await?;
    let Query(q) = query.map_err(|_| Problem::BadRequest("malformed query string"))?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(Problem::BadRequest("limit must be 1-1000"));
    }
    let records = tenant.audit_log(q.after.unwrap_or(0), limit).await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(serde_json::json!({
        "records": records.iter().map(|r| serde_json::json!({
            "seq": r.seq,
            "at": rfc3339(r.at_ms),
            "actor": r.actor,
            "action": r.action,
            "target": r.target,
            "outcome": r.outcome,
            "mac": hex::encode(r.mac),
        })).collect::<Vec<_>>(),
        "next_after": next,
    }))
    .into_response())
}

/// How long a verification result is reused.
const VERIFY_REUSE: std::time::Duration = std::time::Duration::from_secs(10);

/// `GET /v1/audit/verify`: the whole chain against its MACs and the
/// checkpoints outside the database. Verification reads the whole log, so
/// one result serves every caller for ten seconds; it names the kind of
/// problem, not where (that is the operator's `vault audit verify`).
pub(crate) async fn verify(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.tenant_for(Op::Audit).await?;
    let mut cached = state.verified.lock().await;
    if let Some((at, value)) = cached.as_ref() {
        if at.elapsed() < VERIFY_REUSE {
            return Ok(Json(value.clone()).into_response());
        }
    }
    let r = state.vault.verify_audit().await?;
    let problem = r.problem.as_ref().map(|p| match p {
        vault_core::audit::AuditProblem::Missing { .. } => "missing",
        vault_core::audit::AuditProblem::Tampered { .. } => "tampered",
        vault_core::audit::AuditProblem::Truncated { .. } => "truncated",
        vault_core::audit::AuditProblem::HeadMismatch => "head_mismatch",
        _ => "other",
    });
    let value = serde_json::json!({
        "ok": r.is_ok(),
        "problem": problem,
        "verified_at": rfc3339(now_ms()),
    });
    *cached = Some((std::time::Instant::now(), value.clone()));
    Ok(Json(value).into_response())
}
