//! Rate limits: a token bucket per API key and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::problem::Problem;

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct Buckets<K> {
    rate: f64,
    burst: f64,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: std::hash::Hash + Eq + Clone> Buckets<K> {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token, or says how many seconds until one is available.
    fn take(&self, key: &K) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_BUCKETS {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = map.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// Both limiters; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    keys: Arc<Buckets<String>>,
    clients: Arc<Buckets<IpAddr>>,
}

impl Limiter {
    pub(crate) fn new(key_rate: f64, key_burst: f64, client_rate: f64, client_burst: f64) -> Self {
        Self {
            keys: Arc::new(Buckets::new(key_rate, key_burst)),
            clients: Arc::new(Buckets::new(client_rate, client_burst)),
        }
    }

    pub(crate) fn check_key(&self, key_id: &str) -> Result<(), Problem> {
        self.keys
            .take(&key_id.to_owned())
            .map_err(Problem::RateLimited)
    }

    /// One bucket per IPv4 address and per IPv6 /64 (a single host
    /// usually holds a whole /64).
    pub(crate) fn check_client(&self, ip: IpAddr) -> Result<(), Problem> {
        let key = match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
        };
        self.clients.take(&key).map_err(Problem::RateLimited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let b = Buckets::new(1.0, 3.0);
        for _ in 0..3 {
            assert!(b.take(&1).is_ok());
        }
        assert_eq!(b.take(&1), Err(1));
        assert!(b.take(&2).is_ok(), "buckets are per key");
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let l = Limiter::new(1.0, 1.0, 0.001, 1.0);
        assert!(l.check_client("2001:db8::1".parse().unwrap()).is_ok());
        assert!(l.check_client("2001:db8::ffff:1".parse().unwrap()).is_err());
        assert!(l.check_client("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }
}
