//! Document routes: upload, download (ranges, conditional), metadata,
//! delete, list, legal hold and share links.

use std::io;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use vault_core::category::Category;
use vault_core::ids::{ApplicantId, DocumentId};
use vault_core::vault::{DocumentInfo, ListCursor, PutRequest, Tenant};

use super::access::{Caller, Op};
use super::headers::{self, ByteRange};
use super::problem::{ApiResult, Problem};
use super::{AppState, Whole, json_body, sniff};
use crate::time::rfc3339;

/// The API's JSON form of a document's metadata.
pub(crate) fn info_json(i: &DocumentInfo) -> serde_json::Value {
    serde_json::json!({
        "id": i.id.to_string(),
        "applicant": i.applicant.as_str(),
        "category": i.category.as_str(),
        "content_type": i.content_type,
        "file_name": i.file_name,
        "size": i.size,
        "created_at": rfc3339(i.created_at_ms),
        "retain_until": i.retain_until_ms.map(rfc3339),
        "legal_hold": i.legal_hold,
        "sha256": i.sha256.map(hex::encode),
    })
}

pub(crate) fn parse_applicant(s: &str) -> ApiResult<ApplicantId> {
    ApplicantId::new(s).map_err(|_| Problem::BadRequest("malformed applicant id"))
}

pub(crate) fn parse_document(s: &str) -> ApiResult<DocumentId> {
    DocumentId::parse(s).map_err(|_| Problem::BadRequest("malformed document id"))
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> ApiResult<Option<&str>> {
    h.get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| Problem::BadRequest("malformed header"))
        })
        .transpose()
}

/// The request body as a stream that fails with `TimedOut` when the
/// client stalls longer than `idle`, and `ConnectionAborted` when it breaks
/// off.
pub(crate) fn body_stream(
    body: Body,
    idle: std::time::Duration,
) -> BoxStream<'static, vault_core::Result<Bytes>> {
    let inner = body.into_data_stream();
    stream::unfold(Some(inner), move |state| async move {
        let mut s = state?;
        match tokio::time::timeout(idle, s.next()).await {
            Ok(Some(Ok(b))) => Some((Ok(b), Some(s))),
            Ok(Some(Err(_))) => Some((
                Err(vault_core::Error::Io(io::Error::from(
                    io::ErrorKind::ConnectionAborted,
                ))),
                None,
            )),
            Ok(None) => None,
            Err(_) => Some((
                Err(vault_core::Error::Io(io::Error::from(
                    io::ErrorKind::TimedOut,
                ))),
                None,
            )),
        }
    })
    .fuse()
    .boxed()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    category: Option<String>,
    filename: Option<String>,
}

/// `POST /v1/applicants/{applicant}/documents?category=C`
pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(applicant): Path<String>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::Upload).await?;
    let Query(q) = query.map_err(|_| Problem::BadRequest("malformed query string"))?;
    let applicant = parse_applicant(&applicant)?;
    let category: Category = q
        .category
        .as_deref()
        .ok_or(Problem::BadRequest(
            "the category query parameter is required",
        ))?
        .parse()
        .map_err(|_| Problem::BadRequest("unknown category"))?;
    let declared = header_str(&headers, header::CONTENT_TYPE)?
        .ok_or(Problem::UnsupportedMediaType("Content-Type is required"))?
        .to_owned();
    let max = state.settings.max_upload_bytes;
    if let Some(len) = header_str(&headers, header::CONTENT_LENGTH)? {
        let len: u64 = len
            .parse()
            .map_err(|_| Problem::BadRequest("malformed Content-Length"))?;
        if len > max {
            return Err(Problem::TooLarge);
        }
    }
    let file_name = match header_str(&headers, header::CONTENT_DISPOSITION)? {
        Some(v) => headers::disposition_filename(v).map_err(Problem::BadRequest)?,
        None => q.filename,
    };
    let expected = headers
        .get("content-digest")
        .map(|v| {
            v.to_str()
                .map_err(|_| "malformed Content-Digest")
                .and_then(headers::content_digest_sha256)
                .map_err(Problem::BadRequest)
        })
        .transpose()?;

    // Read just enough to know what the bytes are, then stream the rest.
    let mut body = body_stream(body, state.settings.body_idle_timeout());
    let mut head = BytesMut::new();
    let mut first = Vec::new();
    while head.len() < sniff::SNIFF_LEN {
        match body.next().await {
            Some(Ok(b)) => {
                head.extend_from_slice(&b);
                first.push(b);
            }
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
    }
    if head.len() as u64 > max {
        return Err(Problem::TooLarge);
    }
    sniff::check(
        category,
        &declared,
        &head[..head.len().min(sniff::SNIFF_LEN)],
    )
    .map_err(Problem::UnsupportedMediaType)?;
    let body = stream::iter(first.into_iter().map(Ok)).chain(body).boxed();

    let mut req = PutRequest::new(applicant, category, sniff::essence(&declared));
    req.file_name = file_name;
    req.expected_sha256 = expected;
    req.compute_sha256 = state.settings.compute_sha256;
    req.max_size = Some(max);
    let info = tenant.put(req, body).await?;
    state.metrics.add_upload(info.size);
    let mut resp = (StatusCode::CREATED, Json(info_json(&info))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/documents/{}", info.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET|HEAD /v1/documents/{id}`
pub(crate) async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::Read).await?;
    let id = parse_document(&id)?;
    serve(&state, &tenant, id, &method, &headers).await
}

/// Serves a document's bytes: whole, one range (`206`/`416`), or
/// `304` for a matching `If-None-Match`. Shared by downloads and share
/// links.
pub(crate) async fn serve(
    state: &AppState,
    tenant: &Tenant,
    id: DocumentId,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let range = header_str(headers, header::RANGE)?
        .map(|v| headers::parse_range(v).map_err(Problem::BadRequest))
        .transpose()?;
    let etag = headers::etag(&id);
    let if_range_ok = match header_str(headers, header::IF_RANGE)? {
        None => true,
        Some(v) => v.trim() == etag,
    };
    let range: Option<ByteRange> = range.filter(|_| if_range_ok);
    let not_modified =
        header_str(headers, header::IF_NONE_MATCH)?.is_some_and(|v| headers::none_match(v, &etag));

    if *method == Method::HEAD || not_modified {
        let info = tenant.head(id).await?;
        let status = if not_modified {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        };
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = status;
        document_headers(resp.headers_mut(), &info, &etag);
        if !not_modified {
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
            insert_digest(h, &info);
        }
        return Ok(resp);
    }

    let (status, download) = match range {
        Some(r) => {
            // Resolved against the size in the same lookup as the read: one
            // query and one audit record per ranged read.
            let mut size = 0;
            let d = tenant
                .get_range_with(id, |n| {
                    size = n;
                    r.resolve(n).ok_or(vault_core::Error::RangeOutOfBounds)
                })
                .await
                .map_err(|e| match e {
                    vault_core::Error::RangeOutOfBounds => Problem::RangeNotSatisfiable(size),
                    e => e.into(),
                })?;
            (StatusCode::PARTIAL_CONTENT, d)
        }
        None => (StatusCode::OK, tenant.get(id).await?),
    };
    let len = download.range.end - download.range.start;
    state.metrics.add_download(len);
    let body = Body::from_stream(
        download
            .body
            .map_err(|e| io::Error::other(format!("document stream failed: {e}"))),
    );
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    document_headers(h, &download.info, &etag);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            download.range.start,
            download.range.end.saturating_sub(1),
            download.info.size
        )) {
            h.insert(header::CONTENT_RANGE, v);
        }
    } else {
        insert_digest(h, &download.info);
    }
    Ok(resp)
}

/// `Repr-Digest` of the whole plaintext, when it was recorded.
fn insert_digest(h: &mut HeaderMap, info: &DocumentInfo) {
    if let Some(sha) = &info.sha256 {
        if let Ok(v) = HeaderValue::from_str(&headers::digest_header(sha)) {
            h.insert("repr-digest", v);
        }
    }
}

fn document_headers(h: &mut HeaderMap, info: &DocumentInfo, etag: &str) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&info.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&headers::attachment(info.file_name.as_deref())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
}

/// `GET /v1/documents/{id}/metadata`
pub(crate) async fn metadata(caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::Read).await?;
    let info = tenant.head(parse_document(&id)?).await?;
    Ok(Json(info_json(&info)).into_response())
}

/// `DELETE /v1/documents/{id}`
pub(crate) async fn delete(caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let tenant = caller.tenant_for(Op::DeleteDocument).await?;
    tenant.delete(parse_document(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /v1/applicants/{applicant}/documents?limit=&cursor=`
pub(crate) async fn list(
    caller: Caller,
    Path(applicant): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::List).await?;
    let Query(q) = query.map_err(|_| Problem::BadRequest("malformed query string"))?;
    let applicant = parse_applicant(&applicant)?;
    let cursor = q
        .cursor
        .as_deref()
        .map(ListCursor::decode)
        .transpose()
        .map_err(|_| Problem::BadRequest("malformed cursor"))?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > vault_core::vault::LIST_LIMIT_MAX {
        return Err(Problem::BadRequest("limit must be 1-1000"));
    }
    let page = tenant.list(&applicant, cursor.as_ref(), limit).await?;
    Ok(Json(serde_json::json!({
        "documents": page.documents.iter().map(info_json).collect::<Vec<_>>(),
        "next_cursor": page.next.map(|c| c.encode()),
    }))
    .into_response())
}

/// `PUT|DELETE /v1/documents/{id}/legal-hold`
pub(crate) async fn document_hold(
    caller: Caller,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = caller.tenant_for(Op::LegalHold).await?;
    tenant
        .set_document_hold(parse_document(&id)?, method == Method::PUT)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewShareLink {
    ttl_seconds: Whole<u64>,
    max_views: Whole<u32>,
}

/// `POST /v1/documents/{id}/share-links`
pub(crate) async fn create_share_link(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::ShareLink).await?;
    let id = parse_document(&id)?;
    let req: NewShareLink = json_body(&state, &headers, body).await?;
    let link = tenant
        .create_share_link(
            id,
            std::time::Duration::from_secs(req.ttl_seconds.0),
            req.max_views.0,
        )
        .await?;
    let url = format!("/v1/shared/{}", link.token.as_str());
    let mut resp = (
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": link.id,
            "token": link.token.as_str(),
            "url": url,
            "document": id.to_string(),
            "expires_at": rfc3339(link.expires_at_ms),
            "max_views": link.max_views,
        })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `DELETE /v1/share-links/{id}`
pub(crate) async fn revoke_share_link(
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = caller.tenant_for(Op::ShareLink).await?;
    tenant
        .revoke_share_link(super::hex_id(&id, "malformed share link id")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/shared/{token}`: no API key; the token is the capability.
/// A view is used only by a GET that serves bytes: a malformed or
/// unsatisfiable range, a `304`, a `HEAD` or a deleted document use none.
pub(crate) async fn shared(
    State(state): State<AppState>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let range = header_str(&headers, header::RANGE)?
        .map(|v| headers::parse_range(v).map_err(Problem::BadRequest))
        .transpose()?;
    let link = state.vault.redeem_share_link(&token, false).await?;
    let etag = headers::etag(&link.document);
    let not_modified =
        header_str(&headers, header::IF_NONE_MATCH)?.is_some_and(|v| headers::none_match(v, &etag));
    let serves_bytes = method != Method::HEAD && !not_modified;
    if serves_bytes {
        let info = link.tenant.head(link.document).await?;
        if let Some(r) = range {
            r.resolve(info.size)
                .ok_or(Problem::RangeNotSatisfiable(info.size))?;
        }
        // Now use the view (atomically; it may have run out meanwhile).
        state.vault.redeem_share_link(&token, true).await?;
    }
    let mut resp = serve(&state, &link.tenant, link.document, &method, &headers).await?;
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
}
