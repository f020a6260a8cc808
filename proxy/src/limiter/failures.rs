//! How often one client address may fail authentication: a small in-process token bucket
//! per IP, spent by each missing or unknown key. An address that has spent its bucket is
//! answered 429 before its next unknown key costs a Redis lookup, so a flood of random
//! keys can neither load Redis nor guess keys fast; a key the cache already knows still
//! passes. Per instance, not shared through Redis: its job is to shed load, and it must
//! work while Redis is the thing under load.

use super::bucket::LocalBucket;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use tokio::time::Instant;

/// Bound on tracked addresses; past it the map starts over.
const MAX_ADDRESSES: usize = 100_000;

/// Auth failures per client address.
pub struct FailureLimiter {
    buckets: Mutex<HashMap<IpAddr, LocalBucket>>,
    rate_per_s: f64,
    burst: f64,
}

impl FailureLimiter {
    /// Each address may fail `burst` times at once and `rate_per_s` times a second after.
    pub fn new(rate_per_s: f64, burst: u32) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            rate_per_s,
            burst: f64::from(burst.max(1)),
        }
    }

    /// `Some(seconds to wait)` when `ip` has failed too often to try another unknown key.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let buckets = self.buckets.lock().ok()?;
        let tokens = buckets.get(&ip)?.peek(now, self.rate_per_s, self.burst);
        if tokens >= 1.0 {
            return None;
        }
        let wait = ((1.0 - tokens) / self.rate_per_s).ceil();
        Some((wait as u64).max(1))
    }

    /// Counts one failure of `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&ip) {
            buckets.clear();
        }
        buckets
            .entry(ip)
            .or_insert_with(|| LocalBucket::full(self.burst, now))
            .take(now, self.rate_per_s, self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn an_address_is_blocked_after_its_burst_and_let_go_as_it_refills() {
        let limiter = FailureLimiter::new(2.0, 3);
        let (a, b): (IpAddr, IpAddr) =
            ("127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip"));
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.blocked(a, now), None);
            limiter.failed(a, now);
        }
        assert_eq!(limiter.blocked(a, now), Some(1));
        assert_eq!(
            limiter.blocked(b, now),
            None,
            "other addresses are not affected"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(
            limiter.blocked(a, Instant::now()),
            None,
            "one failure refilled"
        );
    }
}
