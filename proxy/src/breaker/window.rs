//! A rolling window of outcomes: ten buckets across `window`, so old results age out
//! in steps of a tenth of the window without keeping every outcome.

use std::time::Duration;
use tokio::time::Instant;

const BUCKETS: usize = 10;

/// Requests and failures over the last `window`.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    bucket_len: Duration,
    start: Instant,
    /// (bucket number since `start`, requests, failures)
    buckets: [(u64, u32, u32); BUCKETS],
}

impl RollingWindow {
    /// An empty window of length `window`.
    pub fn new(window: Duration, now: Instant) -> Self {
        let bucket_len = (window / BUCKETS as u32).max(Duration::from_millis(1));
        Self {
            bucket_len,
            start: now,
            buckets: [(u64::MAX, 0, 0); BUCKETS],
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start);
        u64::try_from(since.as_nanos() / self.bucket_len.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// Records one outcome at `now`.
    pub fn record(&mut self, now: Instant, failed: bool) {
        let n = self.index(now);
        let slot = &mut self.buckets[(n % BUCKETS as u64) as usize];
        if slot.0 != n {
            *slot = (n, 0, 0);
        }
        slot.1 += 1;
        if failed {
            slot.2 += 1;
        }
    }

    /// (requests, failures) within the window ending at `now`.
    pub fn totals(&self, now: Instant) -> (u32, u32) {
        let n = self.index(now);
        self.buckets
            .iter()
            .filter(|(b, _, _)| *b != u64::MAX && *b <= n && n - *b < BUCKETS as u64)
            .fold((0, 0), |(r, f), (_, br, bf)| (r + br, f + bf))
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.buckets = [(u64::MAX, 0, 0); BUCKETS];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn outcomes_age_out_after_the_window() {
        let mut w = RollingWindow::new(Duration::from_secs(10), Instant::now());
        w.record(Instant::now(), true);
        w.record(Instant::now(), false);
        tokio::time::advance(Duration::from_secs(5)).await;
        w.record(Instant::now(), true);
        assert_eq!(w.totals(Instant::now()), (3, 2));
        tokio::time::advance(Duration::from_millis(5500)).await;
        assert_eq!(w.totals(Instant::now()), (1, 1), "the first two aged out");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(w.totals(Instant::now()), (0, 0));
    }
}
