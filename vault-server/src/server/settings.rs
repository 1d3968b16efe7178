//! The `[server]` section of `vault.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The service's settings; every field has a safe default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Address to listen on.
    pub(crate) listen: SocketAddr,
    /// Largest document accepted, in bytes (413 beyond it, while streaming).
    pub(crate) max_upload_bytes: u64,
    /// Largest JSON request body, in bytes.
    pub(crate) max_json_bytes: usize,
    /// TLS from PEM files; plain HTTP when absent (behind a proxy).
    pub(crate) tls: Option<TlsSettings>,
    /// Header naming the client address set by a trusted reverse proxy
    /// (for example `x-forwarded-for`); when absent the peer address is
    /// used and such headers are ignored.
    pub(crate) trusted_proxy_header: Option<String>,
    /// Sustained requests per second allowed per API key.
    pub(crate) rate_per_key: f64,
    /// Burst allowed per API key.
    pub(crate) burst_per_key: f64,
    /// Sustained requests per second allowed per client address.
    pub(crate) rate_per_client: f64,
    /// Burst allowed per client address.
    pub(crate) burst_per_client: f64,
    /// Seconds a client has to send its request headers (and finish the
    /// TLS handshake).
    pub(crate) header_timeout_seconds: u64,
    /// Seconds an upload may stall between two pieces of body.
    pub(crate) body_idle_timeout_seconds: u64,
    /// Seconds graceful shutdown waits for in-flight requests.
    pub(crate) shutdown_grace_seconds: u64,
    /// Compute and record every upload's SHA-256 (returned as `sha256`).
    pub(crate) compute_sha256: bool,
    /// Open connections served at once; more are closed on arrival.
    pub(crate) max_connections: usize,
}

/// Certificate chain and private key, PEM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsSettings {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_upload_bytes: 256 * 1024 * 1024,
            max_json_bytes: 64 * 1024,
            tls: None,
            trusted_proxy_header: None,
            rate_per_key: 50.0,
            burst_per_key: 200.0,
            rate_per_client: 100.0,
            burst_per_client: 400.0,
            header_timeout_seconds: 10,
            body_idle_timeout_seconds: 30,
            shutdown_grace_seconds: 30,
            compute_sha256: true,
            max_connections: 1024,
        }
    }
}

impl Settings {
    /// Parses the section (absent: defaults), resolving TLS paths against
    /// `base`.
    pub(crate) fn from_table(table: Option<&toml::Table>, base: &Path) -> Result<Self, String> {
        let mut s: Settings = match table {
            None => Settings::default(),
            Some(t) => t.clone().try_into().map_err(|e: toml::de::Error| {
                format!("invalid [server] section: {}", e.message())
            })?,
        };
        if let Some(tls) = &mut s.tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
        }
        if !(s.rate_per_key > 0.0
            && s.burst_per_key >= 1.0
            && s.rate_per_client > 0.0
            && s.burst_per_client >= 1.0)
        {
            return Err("[server] rate limits must be positive (bursts at least 1)".into());
        }
        if let Some(h) = &s.trusted_proxy_header {
            s.trusted_proxy_header = Some(h.to_ascii_lowercase());
        }
        Ok(s)
    }

    pub(crate) fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_seconds.max(1))
    }

    pub(crate) fn body_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.body_idle_timeout_seconds.max(1))
    }
}
