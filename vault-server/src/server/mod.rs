//! `vault serve`: the HTTP API over vault-core (`docs/API.md`).
//!
//! One router, one middleware that frames every request (request id,
//! per-client rate limit, security headers, problem+json for every error,
//! logs and metrics), the bearer-key extractor in [`access`], and handlers
//! that each make one vault-core call. Connections are served by one accept
//! loop for plain HTTP and TLS alike, with header and handshake timeouts and
//! graceful shutdown.

mod access;
mod admin;
mod applicants;
mod documents;
mod headers;
mod limits;
mod metrics;
mod problem;
pub(crate) mod settings;
mod sniff;
mod stall;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use vault_core::vault::Vault;

use self::limits::Limiter;
use self::metrics::Metrics;
use self::problem::{ApiResult, Problem};
use self::settings::Settings;

/// The OpenAPI document served at `/openapi.json`.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// Everything a handler can reach; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) vault: Vault,
    pub(crate) settings: Arc<Settings>,
    pub(crate) limiter: Limiter,
    pub(crate) metrics: Metrics,
    /// The last audit verification and when it ran (reused for a while:
    /// verifying reads the whole log).
    pub(crate) verified: Arc<tokio::sync::Mutex<Option<(Instant, serde_json::Value)>>>,
    tls: bool,
}

/// The TCP peer of a connection.
#[derive(Clone, Copy, Debug)]
struct PeerAddr(SocketAddr);

/// The client's address: the peer, or the trusted proxy's header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAddr(pub(crate) IpAddr);

/// The router and the table of its routes (method, path), which the
/// OpenAPI test compares with the document.
struct Routes {
    router: Router<AppState>,
    table: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn add(mut self, method: &'static str, path: &'static str, m: MethodRouter<AppState>) -> Self {
        self.table.push((method, path));
        if method == "get" {
            // axum answers HEAD on every GET route.
            self.table.push(("head", path));
        }
        self.router = self.router.route(path, m);
        self
    }
}

fn routes() -> Routes {
    use self::{admin as a, applicants as ap, documents as d};
    let upload = post(d::upload).layer(DefaultBodyLimit::disable());
    Routes {
        router: Router::new(),
        table: Vec::new(),
    }
    .add("post", "/v1/applicants/{applicant}/documents", upload)
    .add("get", "/v1/applicants/{applicant}/documents", get(d::list))
    .add("get", "/v1/documents/{id}", get(d::download))
    .add("get", "/v1/documents/{id}/metadata", get(d::metadata))
    .add("delete", "/v1/documents/{id}", delete(d::delete))
    .add(
        "put",
        "/v1/documents/{id}/legal-hold",
        put(d::document_hold),
    )
    .add(
        "delete",
        "/v1/documents/{id}/legal-hold",
        delete(d::document_hold),
    )
    .add(
        "post",
        "/v1/documents/{id}/share-links",
        post(d::create_share_link),
    )
    .add(
        "delete",
        "/v1/share-links/{id}",
        delete(d::revoke_share_link),
    )
    .add("get", "/v1/shared/{token}", get(d::shared))
    .add("post", "/v1/applicants/{applicant}/close", post(ap::close))
    .add("delete", "/v1/applicants/{applicant}", delete(ap::erase))
    .add("get", "/v1/applicants/{applicant}/export", get(ap::export))
    .add(
        "put",
        "/v1/applicants/{applicant}/legal-hold",
        put(ap::hold),
    )
    .add(
        "delete",
        "/v1/applicants/{applicant}/legal-hold",
        delete(ap::hold),
    )
    .add("get", "/v1/retention-policy", get(a::get_policy))
    .add("put", "/v1/retention-policy", put(a::put_policy))
    .add("post", "/v1/purge", post(a::purge))
    .add("post", "/v1/api-keys", post(a::create_api_key))
    .add("delete", "/v1/api-keys/{id}", delete(a::revoke_api_key))
    .add("get", "/v1/audit", get(a::audit))
    .add("get", "/v1/audit/verify", get(a::verify))
    .add("get", "/openapi.json", get(openapi))
    .add("get", "/healthz", get(healthz))
    .add("get", "/readyz", get(readyz))
    .add("get", "/metrics", get(metrics_route))
}

/// Every (method, path) the router serves.
#[cfg(test)]
pub(crate) fn route_table() -> Vec<(&'static str, &'static str)> {
    routes().table
}

/// The application: routes, fallbacks and the framing middleware.
pub(crate) fn app(state: AppState) -> Router {
    routes()
        .router
        .fallback(|| async { Problem::NotFound })
        .method_not_allowed_fallback(|| async { Problem::MethodNotAllowed })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            Problem::Internal.into_response()
        }))
        .layer(middleware::from_fn_with_state(state.clone(), frame))
        .with_state(state)
}

/// Reads a JSON body: `application/json` only (415), at most
/// `max_json_bytes` (413), well-formed and with no unknown fields (400).
pub(crate) async fn json_body<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<T> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(sniff::essence);
    if ct.as_deref() != Some("application/json") {
        return Err(Problem::UnsupportedMediaType("expected application/json"));
    }
    let max = state.settings.max_json_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(Problem::TooLarge);
    }
    let mut stream = documents::body_stream(body, state.settings.body_idle_timeout());
    let mut bytes = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > max {
            return Err(Problem::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes).map_err(|_| Problem::BadRequest("malformed JSON body"))
}

/// A non-negative whole number in JSON. JSON Schema counts `5.0` as an
/// integer, so the API does too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Whole<T>(pub(crate) T);

impl<'de, T: TryFrom<u64>> serde::Deserialize<'de> for Whole<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let n = serde_json::Number::deserialize(d)?;
        let v = whole_i64(&n)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| D::Error::custom("expected a non-negative whole number"))?;
        T::try_from(v)
            .map(Whole)
            .map_err(|_| D::Error::custom("number out of range"))
    }
}

/// A whole number in JSON, `5.0` included (JSON Schema's integers), within
/// the range an `f64` holds exactly.
pub(crate) fn whole_i64(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
            .map(|f| f as i64)
    })
}

/// Whether `id` is 32 hex digits, as API key and share link ids are.
pub(crate) fn is_hex_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `id` if it is a well-formed key or link id, else `400` with `what`.
pub(crate) fn hex_id<'a>(id: &'a str, what: &'static str) -> ApiResult<&'a str> {
    if is_hex_id(id) {
        Ok(id)
    } else {
        Err(Problem::BadRequest(what))
    }
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn readyz(State(state): State<AppState>) -> ApiResult<Response> {
    state.vault.check_ready().await.map_err(|e| {
        tracing::warn!(error = %e, "not ready");
        Problem::Unavailable
    })?;
    Ok(axum::Json(serde_json::json!({ "status": "ready" })).into_response())
}

async fn metrics_route(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The client address of a request: the trusted proxy header's last
/// (nearest) entry when configured, else the TCP peer.
fn client_addr(state: &AppState, req: &Request) -> IpAddr {
    let peer = req
        .extensions()
        .get::<PeerAddr>()
        .map(|p| p.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let Some(name) = &state.settings.trusted_proxy_header else {
        return peer;
    };
    // The last line, then its last entry: what the trusted proxy appended.
    req.headers()
        .get_all(name.as_str())
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer)
}

/// Whether an HTTP/1.x request has a body the handler might not read to
/// its end.
fn may_carry_body(req: &Request) -> bool {
    let h1 = req.version() <= axum::http::Version::HTTP_11;
    let h = req.headers();
    let chunked = h.contains_key(header::TRANSFER_ENCODING);
    let sized = h
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0");
    h1 && (chunked || sized)
}

/// Frames every request: id, per-client limit, security headers,
/// problem+json for every error, a log line and metrics.
async fn frame(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let client = client_addr(&state, &req);
    req.extensions_mut().insert(ClientAddr(client));
    let unread_body_possible = may_carry_body(&req);
    // Counted out even if the request is dropped mid-way (a client reset).
    let in_flight = state.metrics.in_flight();
    let mut resp = match state.limiter.check_client(client) {
        Ok(()) => next.run(req).await,
        Err(p) => p.into_response(),
    };
    let status = resp.status();
    // Rejections from axum's own extractors come as text: turn them into
    // problems too.
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if status.as_u16() >= 400 && !is_problem {
        resp = match status {
            StatusCode::PAYLOAD_TOO_LARGE => Problem::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Problem::UnsupportedMediaType("unsupported media type")
            }
            StatusCode::NOT_FOUND => Problem::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Problem::MethodNotAllowed,
            s if s.is_client_error() => Problem::BadRequest("malformed request"),
            _ => Problem::Internal,
        }
        .into_response();
    }
    let h = resp.headers_mut();
    // An error may answer before the body is read (a 413 on the declared
    // length, a 401 before an upload). hyper then closes the connection
    // without saying so, and a client that pools it sends its next request
    // into a closed socket. Saying `Connection: close` makes it open a new
    // one. HTTP/2 has no such header and resets only the stream.
    if status.as_u16() >= 400 && unread_body_possible {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; sandbox"),
    );
    if state.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    // Only known methods become labels: a client cannot mint new series.
    let method = match method.as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m,
        _ => "other",
    };
    drop(in_flight);
    state.metrics.finish(method, &route, status, seconds);
    // No URI, no ids, no client address in logs: the route template only.
    tracing::info!(
        request_id = %request_id,
        method = %method,
        route = %route,
        status,
        ms = (seconds * 1000.0) as u64,
        "request"
    );
    resp
}

fn tls_acceptor(settings: &Settings) -> Result<Option<TlsAcceptor>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let Some(tls) = &settings.tls else {
        return Ok(None);
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| format!("TLS certificate {}: {e}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|_| {
        format!(
            "TLS private key {}: unreadable or not PEM",
            tls.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| format!("TLS configuration: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Binds the listener (reporting problems before anything is served).
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Serves until `shutdown` resolves, then stops accepting and waits (up to
/// the grace period) for in-flight requests to finish.
pub(crate) async fn serve(
    vault: Vault,
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let tls = tls_acceptor(&settings)?;
    let state = AppState {
        vault,
        limiter: Limiter::new(
            settings.rate_per_key,
            settings.burst_per_key,
            settings.rate_per_client,
            settings.burst_per_client,
        ),
        metrics: Metrics::default(),
        verified: Arc::default(),
        tls: tls.is_some(),
        settings: Arc::new(settings),
    };
    let settings = state.settings.clone();
    let app = app(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Past the cap, new connections are closed at once rather than
        // queued: a flood of idle sockets cannot exhaust descriptors.
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!("connection limit reached; refusing a connection");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let svc = tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(PeerAddr(peer));
                req
            },
        );
        let svc = TowerToHyperService::new(svc);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let settings = settings.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(tcp, false, svc, &settings, watcher).await,
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(settings.header_timeout(), acceptor.accept(tcp))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            _ => return,
                        };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    serve_connection(stream, h2, svc, &settings, watcher).await;
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    let grace = std::time::Duration::from_secs(settings.shutdown_grace_seconds);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}

/// Serves one connection: HTTP/1.1, whose header-read timer runs from
/// the connection's start, or HTTP/2 when TLS negotiated it, with
/// keep-alive pings that close dead or silent peers.
async fn serve_connection<I, S>(
    io: I,
    h2: bool,
    svc: S,
    settings: &Settings,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            Request<hyper::body::Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    // A peer that stops reading is cut off like one that stops sending.
    let io = TokioIo::new(stall::WriteStallTimeout::new(
        io,
        settings.body_idle_timeout(),
    ));
    if h2 {
        let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .keep_alive_interval(Some(settings.header_timeout()))
            .keep_alive_timeout(settings.header_timeout())
            .max_concurrent_streams(64);
        let _ = watcher.watch(b.serve_connection(io, svc)).await;
    } else {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(settings.header_timeout());
        let _ = watcher.watch(b.serve_connection(io, svc)).await;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_follow_json_schema() {
        let w = |t: &str| serde_json::from_str::<Whole<u32>>(t).map(|w| w.0).ok();
        assert_eq!(w("5"), Some(5));
        assert_eq!(w("5.0"), Some(5));
        assert_eq!(w("5.5"), None);
        assert_eq!(w("-1"), None);
        assert_eq!(w("4294967296"), None);
        assert_eq!(w("\"5\""), None);
    }

    /// The OpenAPI document and the router agree exactly.
    #[test]
    fn openapi_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "put", "post", "delete", "head", "patch", "options"]
                    .contains(&method.as_str())
                {
                    documented.insert((method.clone(), path.clone()));
                }
            }
        }
        let routed: std::collections::BTreeSet<(String, String)> = route_table()
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
            .collect();
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty(),
            "routes missing from openapi.json: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "openapi.json documents routes that do not exist: {extra:?}"
        );
    }
}
