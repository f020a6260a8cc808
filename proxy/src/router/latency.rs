//! Recent response times of a hedged route's answers, for its adaptive hedge delay (p95).
//!
//! Per route, not per upstream group: an unhedged route on the same group would feed its
//! slow tail in, and once 5% of answers are slow the p95 *is* the tail, which would make
//! the hedge wait as long as the slow request it should overtake. The hedged route
//! records the answers it actually served (a hedge that won records its own time).
//!
//! A log-linear histogram (8 sub-buckets per power of two of microseconds, so a bucket
//! is at most 12.5% wide) over two rotating 5-second windows: the quantile covers the
//! last 5 to 10 seconds. The p95 is recomputed at most every 20 ms, not per request.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

const BUCKETS: usize = 256;
const ROTATE: Duration = Duration::from_secs(5);
const RECOMPUTE: Duration = Duration::from_millis(20);

struct Inner {
    current: [u32; BUCKETS],
    previous: [u32; BUCKETS],
    rotated_at: Instant,
    cached: Option<(Instant, Option<Duration>)>,
}

/// One group's tracker.
pub struct LatencyTracker {
    inner: Mutex<Inner>,
}

fn index(micros: u64) -> usize {
    if micros < 16 {
        return micros as usize;
    }
    let msb = 63 - micros.leading_zeros() as usize;
    let sub = ((micros >> (msb - 3)) & 7) as usize;
    (16 + (msb - 4) * 8 + sub).min(BUCKETS - 1)
}

/// The upper edge of bucket `i`, in microseconds.
fn upper(i: usize) -> u64 {
    if i < 16 {
        return i as u64 + 1;
    }
    let msb = (i - 16) / 8 + 4;
    let sub = ((i - 16) % 8) as u64;
    (8 + sub + 1) << (msb - 3)
}

impl std::fmt::Debug for LatencyTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyTracker").finish_non_exhaustive()
    }
}

impl Default for LatencyTracker {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                current: [0; BUCKETS],
                previous: [0; BUCKETS],
                rotated_at: Instant::now(),
                cached: None,
            }),
        }
    }
}

impl LatencyTracker {
    fn rotate(inner: &mut Inner, now: Instant) {
        let since = now.saturating_duration_since(inner.rotated_at);
        if since >= ROTATE {
            inner.previous = if since >= ROTATE * 2 {
                [0; BUCKETS]
            } else {
                inner.current
            };
            inner.current = [0; BUCKETS];
            inner.rotated_at = now;
        }
    }

    /// Records one response time.
    pub fn record(&self, latency: Duration) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        Self::rotate(&mut inner, Instant::now());
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        inner.current[index(micros)] += 1;
    }

    /// The 95th percentile of recent response times; `None` with too few samples (20).
    pub fn p95(&self) -> Option<Duration> {
        let now = Instant::now();
        let Ok(mut inner) = self.inner.lock() else {
            return None;
        };
        if let Some((at, value)) = inner.cached {
            if now.saturating_duration_since(at) < RECOMPUTE {
                return value;
            }
        }
        Self::rotate(&mut inner, now);
        let counts: Vec<u64> = (0..BUCKETS)
            .map(|i| u64::from(inner.current[i]) + u64::from(inner.previous[i]))
            .collect();
        let total: u64 = counts.iter().sum();
        let value = (total >= 20).then(|| {
            let rank = (total * 95).div_ceil(100);
            let mut seen = 0;
            let bucket = counts
                .iter()
                .position(|c| {
                    seen += c;
                    seen >= rank
                })
                .unwrap_or(BUCKETS - 1);
            Duration::from_micros(upper(bucket))
        });
        inner.cached = Some((now, value));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for micros in [1u64, 15, 16, 17, 100, 1000, 1234, 300_000, 10_000_000] {
            let i = index(micros);
            assert!(i >= last, "{micros}");
            last = i;
            assert!(
                upper(i) > micros,
                "{micros} -> bucket {i} ends at {}",
                upper(i)
            );
            assert!(
                upper(i) as f64 <= micros as f64 * 1.25 + 1.0,
                "{micros} -> {}",
                upper(i)
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn p95_follows_the_slow_tail_and_forgets_it() {
        let t = LatencyTracker::default();
        assert_eq!(t.p95(), None, "too few samples");
        for _ in 0..90 {
            t.record(Duration::from_millis(1));
        }
        for _ in 0..10 {
            t.record(Duration::from_millis(300));
        }
        tokio::time::advance(RECOMPUTE).await;
        let p95 = t.p95().expect("enough samples");
        assert!(
            p95 >= Duration::from_millis(300) && p95 < Duration::from_millis(340),
            "{p95:?}"
        );
        tokio::time::advance(ROTATE * 2).await;
        for _ in 0..100 {
            t.record(Duration::from_millis(2));
        }
        tokio::time::advance(RECOMPUTE).await;
        let p95 = t.p95().expect("enough samples");
        assert!(
            p95 <= Duration::from_micros(2304),
            "old samples aged out: {p95:?}"
        );
    }
}
