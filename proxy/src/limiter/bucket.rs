//! The in-process token bucket: the fallback when Redis is away. Same arithmetic as the
//! Lua script, on tokio's clock so tests can pause and advance time.

use tokio::time::Instant;

/// One subject's bucket.
#[derive(Debug, Clone)]
pub struct LocalBucket {
    tokens: f64,
    last: Instant,
}

/// The result of taking one token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Take {
    /// Whether the request may pass.
    pub allowed: bool,
    /// Tokens left after this request.
    pub tokens: f64,
    /// Seconds until one token is available (0 when allowed).
    pub retry_after_s: f64,
}

impl LocalBucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    /// The tokens there would be at `now`, without taking one.
    pub fn peek(&self, now: Instant, rate_per_s: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * rate_per_s).min(burst)
    }

    /// Refills for the time since the last call, then takes one token if there is one.
    pub fn take(&mut self, now: Instant, rate_per_s: f64, burst: f64) -> Take {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate_per_s).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Take {
                allowed: true,
                tokens: self.tokens,
                retry_after_s: 0.0,
            }
        } else {
            Take {
                allowed: false,
                tokens: self.tokens,
                retry_after_s: (1.0 - self.tokens) / rate_per_s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_admits_the_burst_then_the_rate() {
        let mut b = LocalBucket::full(5.0, Instant::now());
        let admitted = (0..10)
            .filter(|_| b.take(Instant::now(), 2.0, 5.0).allowed)
            .count();
        assert_eq!(admitted, 5, "the burst, no more");
        let denied = b.take(Instant::now(), 2.0, 5.0);
        assert!(!denied.allowed);
        assert!(
            (denied.retry_after_s - 0.5).abs() < 1e-9,
            "one token at 2/s takes 0.5 s"
        );

        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(
            b.take(Instant::now(), 2.0, 5.0).allowed,
            "refilled one token"
        );
        assert!(!b.take(Instant::now(), 2.0, 5.0).allowed);

        tokio::time::advance(Duration::from_secs(10)).await;
        let admitted = (0..10)
            .filter(|_| b.take(Instant::now(), 2.0, 5.0).allowed)
            .count();
        assert_eq!(admitted, 5, "refill is capped at the burst");
    }

    #[tokio::test(start_paused = true)]
    async fn over_a_long_run_admissions_equal_burst_plus_rate_times_time() {
        let mut b = LocalBucket::full(100.0, Instant::now());
        let mut admitted = 0;
        // 10 s at one attempt per millisecond, against 100/s with burst 100.
        for _ in 0..10_000 {
            if b.take(Instant::now(), 100.0, 100.0).allowed {
                admitted += 1;
            }
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert!(
            (1099..=1101).contains(&admitted),
            "admitted {admitted}, expected 100 + 100 x 10"
        );
    }
}
