//! A budget of extra work per route: retries (or hedges) may be at most `percent` of the
//! route's recent requests, plus `min_per_s` always, so that when an upstream fails or
//! slows, extra attempts cannot multiply the load on what is left (the Finagle / linkerd
//! retry budget idea).

use crate::breaker::window::RollingWindow;
use crate::config::RetryBudgetConfig;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The window the budget looks back over.
const WINDOW: Duration = Duration::from_secs(10);

/// One route's budget.
#[derive(Debug)]
pub struct Budget {
    cfg: RetryBudgetConfig,
    /// Events: requests recorded as successes, extra attempts as "failures".
    window: Mutex<RollingWindow>,
}

impl Budget {
    /// An empty budget.
    pub fn new(cfg: RetryBudgetConfig) -> Self {
        Self {
            cfg,
            window: Mutex::new(RollingWindow::new(WINDOW, Instant::now())),
        }
    }

    /// Counts a request (its first attempt).
    pub fn record_request(&self, now: Instant) {
        if let Ok(mut w) = self.window.lock() {
            w.record(now, false);
        }
    }

    /// Takes one extra attempt from the budget if there is one.
    pub fn try_take(&self, now: Instant) -> bool {
        let Ok(mut w) = self.window.lock() else {
            return false;
        };
        let (events, retries) = w.totals(now);
        let requests = f64::from(events - retries);
        let allowed =
            (requests * self.cfg.percent / 100.0).max(self.cfg.min_per_s * WINDOW.as_secs_f64());
        if f64::from(retries) < allowed {
            w.record(now, true);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_capped_by_the_share_of_requests() {
        let budget = Budget::new(RetryBudgetConfig {
            percent: 10.0,
            min_per_s: 0.0,
        });
        for _ in 0..100 {
            budget.record_request(Instant::now());
        }
        let granted = (0..50).filter(|_| budget.try_take(Instant::now())).count();
        assert_eq!(granted, 10, "10% of 100 requests");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(
            !budget.try_take(Instant::now()),
            "no requests in the window, no minimum"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_minimum_is_always_allowed() {
        let budget = Budget::new(RetryBudgetConfig {
            percent: 0.0,
            min_per_s: 1.0,
        });
        let granted = (0..50).filter(|_| budget.try_take(Instant::now())).count();
        assert_eq!(granted, 10, "1/s over the 10 s window");
    }
}
