//! Prometheus metrics: request counts by route template and status,
//! request durations, bytes in and out. Labels carry route templates and
//! status codes only, never ids.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// (method, route template, status) → (count, total seconds).
type RequestCounts = BTreeMap<(String, String, u16), (u64, f64)>;

#[derive(Debug, Default)]
struct Inner {
    requests: Mutex<RequestCounts>,
    in_flight: AtomicI64,
    upload_bytes: AtomicU64,
    download_bytes: AtomicU64,
}

/// One request in flight (decremented on drop, however the request ends).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Shared counters; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics(Arc<Inner>);

impl Metrics {
    /// Counts a request in flight until the guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.0.clone())
    }

    pub(crate) fn finish(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut m = self.0.requests.lock().unwrap_or_else(|p| p.into_inner());
        let e = m
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        e.0 += 1;
        e.1 += seconds;
    }

    pub(crate) fn add_upload(&self, n: u64) {
        self.0.upload_bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_download(&self, n: u64) {
        self.0.download_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let m = self.0.requests.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP vault_http_requests_total HTTP requests by method, route and status.\n# TYPE vault_http_requests_total counter\n");
        for ((method, route, status), (n, _)) in m.iter() {
            let _ = writeln!(
                out,
                "vault_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP vault_http_request_seconds_sum Total time spent in requests by method and route.\n# TYPE vault_http_request_seconds_sum counter\n");
        let mut by_route: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for ((method, route, _), (_, s)) in m.iter() {
            *by_route.entry((method, route)).or_default() += s;
        }
        for ((method, route), s) in by_route {
            let _ = writeln!(
                out,
                "vault_http_request_seconds_sum{{method=\"{method}\",route=\"{route}\"}} {s:.6}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP vault_http_in_flight Requests being served.\n# TYPE vault_http_in_flight gauge\nvault_http_in_flight {}",
            self.0.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vault_upload_bytes_total Plaintext bytes stored.\n# TYPE vault_upload_bytes_total counter\nvault_upload_bytes_total {}",
            self.0.upload_bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP vault_download_bytes_total Plaintext bytes served.\n# TYPE vault_download_bytes_total counter\nvault_download_bytes_total {}",
            self.0.download_bytes.load(Ordering::Relaxed)
        );
        out
    }
}
