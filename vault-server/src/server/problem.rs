//! Errors as `application/problem+json` (RFC 9457): a stable `type` per
//! kind, a fixed title, and never an internal detail, a key, a file name or
//! plaintext.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vault_core::Error;

/// Prefix of every problem `type`.
pub(crate) const TYPE_PREFIX: &str = "urn:document-vault:problem:";

/// Every error the API returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    BadRequest(&'static str),
    UnsupportedMediaType(&'static str),
    TooLarge,
    DigestMismatch,
    RangeNotSatisfiable(u64),
    LegalHold,
    Conflict,
    LinkExpired,
    RateLimited(u64),
    Timeout,
    UploadInterrupted,
    Integrity,
    StorageFull,
    Unavailable,
    Internal,
}

impl Problem {
    fn parts(self) -> (StatusCode, &'static str, &'static str) {
        use Problem::*;
        match self {
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Missing, invalid, expired or revoked API key",
            ),
            Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "The API key's role does not allow this",
            ),
            NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Malformed request"),
            UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Content type not allowed",
            ),
            TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Body exceeds the size limit",
            ),
            DigestMismatch => (
                StatusCode::BAD_REQUEST,
                "digest-mismatch",
                "Content-Digest does not match the body",
            ),
            RangeNotSatisfiable(_) => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                "Range not satisfiable",
            ),
            LegalHold => (StatusCode::CONFLICT, "legal-hold", "Under legal hold"),
            Conflict => (StatusCode::CONFLICT, "conflict", "Already exists"),
            LinkExpired => (
                StatusCode::GONE,
                "link-expired",
                "Share link expired, revoked or used up",
            ),
            RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            Timeout => (
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "The client was too slow",
            ),
            UploadInterrupted => (
                StatusCode::BAD_REQUEST,
                "upload-interrupted",
                "The request body ended abnormally",
            ),
            Integrity => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "integrity",
                "Stored data failed its integrity check",
            ),
            StorageFull => (
                StatusCode::INSUFFICIENT_STORAGE,
                "storage-full",
                "Storage is full",
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "A backing service is unavailable",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        match e {
            Error::Unauthorized => Problem::Unauthorized,
            Error::NotFound => Problem::NotFound,
            Error::InvalidArgument(m) => Problem::BadRequest(m),
            Error::RangeOutOfBounds => Problem::RangeNotSatisfiable(0),
            Error::TooLarge => Problem::TooLarge,
            Error::DigestMismatch => Problem::DigestMismatch,
            Error::LegalHold => Problem::LegalHold,
            Error::AlreadyExists => Problem::Conflict,
            Error::LinkExpired => Problem::LinkExpired,
            Error::Authentication | Error::Format(_) | Error::Corrupt(_) => {
                tracing::error!(error = %e, "stored data failed verification");
                Problem::Integrity
            }
            Error::Io(io) => match io.kind() {
                std::io::ErrorKind::TimedOut => Problem::Timeout,
                std::io::ErrorKind::ConnectionAborted => Problem::UploadInterrupted,
                std::io::ErrorKind::StorageFull => Problem::StorageFull,
                _ => {
                    tracing::error!(error = %io, "I/O error");
                    Problem::Internal
                }
            },
            Error::Storage(ref inner) => {
                if format!("{inner}").contains("No space left") {
                    return Problem::StorageFull;
                }
                tracing::error!(error = %e, "blob store error");
                Problem::Unavailable
            }
            Error::Database(_) => {
                tracing::error!(error = %e, "database error");
                Problem::Unavailable
            }
            other => {
                tracing::error!(error = %other, "internal error");
                Problem::Internal
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let detail: Option<String> = match self {
            Problem::BadRequest(m) | Problem::UnsupportedMediaType(m) => Some(m.to_owned()),
            _ => None,
        };
        let mut body = serde_json::json!({
            "type": format!("{TYPE_PREFIX}{slug}"),
            "title": title,
            "status": status.as_u16(),
        });
        if let Some(d) = detail {
            body["detail"] = d.into();
        }
        let mut resp = (status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            Problem::RateLimited(secs) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            Problem::RangeNotSatisfiable(size) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            Problem::Unauthorized => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

/// Handler result.
pub(crate) type ApiResult<T> = Result<T, Problem>;
