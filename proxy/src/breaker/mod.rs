//! Circuit breaker per upstream peer, shared by load balancing and retries.
//!
//! Closed -> open when, within the rolling window, failures reach `failure_rate` of at
//! least `min_requests` requests, or `consecutive_failures` fail in a row. Open for
//! `open_ms`: the peer gets no traffic. Then half-open: up to `half_open_probes` requests
//! go through; all succeeding closes the breaker, any failing re-opens it. Failures are
//! connect errors, timeouts and the configured statuses (5xx by default).

pub mod window;

use crate::config::BreakerConfig;
use std::sync::Mutex;
use tokio::time::Instant;
use window::RollingWindow;

/// The breaker's state, as exported (`sluice_breaker_state`: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// No traffic until the open period ends.
    Open,
    /// A few probes decide.
    HalfOpen,
}

impl BreakerState {
    /// Metric value.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }

    /// Name for logs, metrics and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    window: RollingWindow,
    consecutive_failures: u32,
    opened_at: Instant,
    /// Half-open: probes let through and probes that succeeded.
    probes_admitted: u32,
    probes_succeeded: u32,
}

/// One peer's breaker.
#[derive(Debug)]
pub struct Breaker {
    cfg: BreakerConfig,
    inner: Mutex<Inner>,
}

/// A state change, for the caller to log and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Before.
    pub from: BreakerState,
    /// After.
    pub to: BreakerState,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        let now = Instant::now();
        Self {
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                window: RollingWindow::new(cfg.window, now),
                consecutive_failures: 0,
                opened_at: now,
                probes_admitted: 0,
                probes_succeeded: 0,
            }),
            cfg,
        }
    }

    /// The current state (an expired open period reads as half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner.lock() {
            Ok(inner)
                if inner.state == BreakerState::Open && now >= inner.opened_at + self.cfg.open =>
            {
                BreakerState::HalfOpen
            }
            Ok(inner) => inner.state,
            Err(_) => BreakerState::Closed,
        }
    }

    /// Seconds until an open breaker lets a probe through (0 when not open).
    pub fn open_remaining(&self, now: Instant) -> std::time::Duration {
        match self.inner.lock() {
            Ok(inner) if inner.state == BreakerState::Open => {
                (inner.opened_at + self.cfg.open).saturating_duration_since(now)
            }
            _ => std::time::Duration::ZERO,
        }
    }

    /// Whether a request may go to this peer now. In half-open this takes a probe slot,
    /// so call it only for the peer actually chosen.
    pub fn admit(&self, now: Instant) -> (bool, Option<Transition>) {
        let Ok(mut inner) = self.inner.lock() else {
            return (true, None);
        };
        let mut transition = None;
        if inner.state == BreakerState::Open {
            if now < inner.opened_at + self.cfg.open {
                return (false, None);
            }
            inner.state = BreakerState::HalfOpen;
            inner.probes_admitted = 0;
            inner.probes_succeeded = 0;
            inner.opened_at = now;
            transition = Some(Transition {
                from: BreakerState::Open,
                to: BreakerState::HalfOpen,
            });
        }
        if inner.state == BreakerState::HalfOpen {
            // Probes that never report (client gone) must not wedge the breaker: after
            // another open period without a verdict, probing starts over.
            if inner.probes_admitted >= self.cfg.half_open_probes
                && now >= inner.opened_at + self.cfg.open
            {
                inner.probes_admitted = 0;
                inner.probes_succeeded = 0;
                inner.opened_at = now;
            }
            if inner.probes_admitted >= self.cfg.half_open_probes {
                return (false, transition);
            }
            inner.probes_admitted += 1;
        }
        (true, transition)
    }

    /// Closes the breaker (the active health checks saw the peer recover). Returns the
    /// transition when it was not closed.
    pub fn reset(&self) -> Option<Transition> {
        let Ok(mut inner) = self.inner.lock() else {
            return None;
        };
        let from = inner.state;
        inner.state = BreakerState::Closed;
        inner.window.clear();
        inner.consecutive_failures = 0;
        (from != BreakerState::Closed).then_some(Transition {
            from,
            to: BreakerState::Closed,
        })
    }

    /// Records the outcome of a request admitted earlier.
    pub fn record(&self, now: Instant, failed: bool) -> Option<Transition> {
        let Ok(mut inner) = self.inner.lock() else {
            return None;
        };
        match inner.state {
            BreakerState::Closed => {
                inner.window.record(now, failed);
                inner.consecutive_failures = if failed {
                    inner.consecutive_failures + 1
                } else {
                    0
                };
                let (requests, failures) = inner.window.totals(now);
                let rate_trips = requests >= self.cfg.min_requests
                    && f64::from(failures) >= self.cfg.failure_rate * f64::from(requests);
                let streak_trips = self.cfg.consecutive_failures > 0
                    && inner.consecutive_failures >= self.cfg.consecutive_failures;
                (rate_trips || streak_trips).then(|| open(&mut inner, now, BreakerState::Closed))
            }
            BreakerState::HalfOpen if failed => Some(open(&mut inner, now, BreakerState::HalfOpen)),
            BreakerState::HalfOpen => {
                inner.probes_succeeded += 1;
                (inner.probes_succeeded >= self.cfg.half_open_probes).then(|| {
                    inner.state = BreakerState::Closed;
                    inner.window.clear();
                    inner.consecutive_failures = 0;
                    Transition {
                        from: BreakerState::HalfOpen,
                        to: BreakerState::Closed,
                    }
                })
            }
            // A request admitted before the breaker opened: its result changes nothing.
            BreakerState::Open => None,
        }
    }
}

fn open(inner: &mut Inner, now: Instant, from: BreakerState) -> Transition {
    inner.state = BreakerState::Open;
    inner.opened_at = now;
    inner.window.clear();
    inner.consecutive_failures = 0;
    Transition {
        from,
        to: BreakerState::Open,
    }
}

/// Exports and logs a breaker state change (once per transition).
pub fn report_transition(upstream: &str, peer: &str, transition: Option<Transition>) {
    let Some(t) = transition else { return };
    let m = crate::metrics::metrics();
    m.breaker_state
        .with_label_values(&[upstream, peer])
        .set(t.to.as_i64());
    m.breaker_transitions
        .with_label_values(&[upstream, peer, t.to.as_str()])
        .inc();
    match t.to {
        BreakerState::Open => {
            tracing::warn!(%upstream, %peer, from = t.from.as_str(), "circuit breaker opened")
        }
        _ => tracing::info!(%upstream, %peer, to = t.to.as_str(), "circuit breaker changed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            failure_rate: 0.5,
            min_requests: 10,
            window: Duration::from_secs(10),
            consecutive_failures: 5,
            open: Duration::from_secs(5),
            half_open_probes: 3,
            failure_statuses: vec![500, 502, 503, 504],
        }
    }

    fn now() -> Instant {
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_failure_rate_only_after_min_requests() {
        let b = Breaker::new(BreakerConfig {
            consecutive_failures: 0,
            ..cfg()
        });
        for i in 0..9 {
            assert_eq!(b.record(now(), i % 2 == 0), None, "below min_requests");
        }
        let t = b
            .record(now(), true)
            .expect("10th request, 6/10 failed: opens");
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert!(!b.admit(now()).0, "open: no traffic");
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_consecutive_failures() {
        let b = Breaker::new(cfg());
        for _ in 0..4 {
            assert_eq!(b.record(now(), true), None);
        }
        assert!(
            b.record(now(), false).is_none(),
            "a success resets the streak"
        );
        for _ in 0..4 {
            assert_eq!(b.record(now(), true), None);
        }
        assert_eq!(
            b.record(now(), true).map(|t| t.to),
            Some(BreakerState::Open)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_only_the_probe_cap_and_closes_on_their_success() {
        let b = Breaker::new(cfg());
        for _ in 0..5 {
            b.record(now(), true);
        }
        tokio::time::advance(Duration::from_millis(4999)).await;
        assert!(!b.admit(now()).0, "still open");
        tokio::time::advance(Duration::from_millis(1)).await;
        let (admitted, t) = b.admit(now());
        assert!(admitted);
        assert_eq!(t.map(|t| t.to), Some(BreakerState::HalfOpen));
        assert!(
            b.admit(now()).0 && b.admit(now()).0,
            "three probes in total"
        );
        assert!(!b.admit(now()).0, "the fourth waits");
        assert_eq!(b.record(now(), false), None);
        assert_eq!(b.record(now(), false), None);
        assert_eq!(
            b.record(now(), false).map(|t| t.to),
            Some(BreakerState::Closed)
        );
        assert!(b.admit(now()).0 && b.admit(now()).0 && b.admit(now()).0 && b.admit(now()).0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens() {
        let b = Breaker::new(cfg());
        for _ in 0..5 {
            b.record(now(), true);
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(b.admit(now()).0);
        let t = b.record(now(), true).expect("reopens");
        assert_eq!((t.from, t.to), (BreakerState::HalfOpen, BreakerState::Open));
        assert!(!b.admit(now()).0);
        assert_eq!(b.open_remaining(now()), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn reset_closes_an_open_breaker_at_once() {
        let b = Breaker::new(cfg());
        for _ in 0..5 {
            b.record(now(), true);
        }
        assert!(!b.admit(now()).0);
        let t = b.reset().expect("was open");
        assert_eq!((t.from, t.to), (BreakerState::Open, BreakerState::Closed));
        assert!(b.admit(now()).0);
        assert_eq!(b.reset(), None, "already closed");
    }

    #[tokio::test(start_paused = true)]
    async fn lost_probes_do_not_wedge_half_open() {
        let b = Breaker::new(cfg());
        for _ in 0..5 {
            b.record(now(), true);
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        for _ in 0..3 {
            assert!(b.admit(now()).0);
        }
        assert!(!b.admit(now()).0, "probes out, no verdict yet");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(
            b.admit(now()).0,
            "after another open period, probing starts over"
        );
    }
}
