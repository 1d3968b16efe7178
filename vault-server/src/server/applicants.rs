//! Applicant routes: close, erasure, export and legal hold.

use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

use super::access::{Caller, Op};
use super::documents::parse_applicant;
use super::problem::{ApiResult, Problem};

/// `POST /v1/applicants/{applicant}/close`
pub(crate) async fn close(caller: Caller, Path(applicant): Path<String>) -> ApiResult<StatusCode> {
    let tenant = caller.tenant_for(Op::CloseApplication).await?;
    tenant
        .close_application(&parse_applicant(&applicant)?, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/applicants/{applicant}`: crypto-shredding; the receipt.
pub(crate) async fn erase(caller: Caller, Path(applicant): Path<String>) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::Erase).await?;
    let receipt = tenant
        .erase_applicant(&parse_applicant(&applicant)?)
        .await?;
    let value: serde_json::Value =
        serde_json::from_str(&receipt.to_json()).map_err(|_| Problem::Internal)?;
    Ok(Json(value).into_response())
}

/// `GET /v1/applicants/{applicant}/export`: a streamed tar archive.
pub(crate) async fn export(caller: Caller, Path(applicant): Path<String>) -> ApiResult<Response> {
    let tenant = caller.tenant_for(Op::Export).await?;
    let applicant = parse_applicant(&applicant)?;
    let reference = tenant.applicant_ref(&applicant);
    let export = tenant.export(&applicant).await?;
    let body = Body::from_stream(
        export
            .body
            .map_err(|e| std::io::Error::other(format!("export stream failed: {e}"))),
    );
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"export-{}.tar\"",
        &reference[..reference.len().min(16)]
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-document-count", HeaderValue::from(export.documents));
    Ok(resp)
}

/// `PUT|DELETE /v1/applicants/{applicant}/legal-hold`
pub(crate) async fn hold(
    caller: Caller,
    method: Method,
    Path(applicant): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = caller.tenant_for(Op::LegalHold).await?;
    tenant
        .set_applicant_hold(&parse_applicant(&applicant)?, method == Method::PUT)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
