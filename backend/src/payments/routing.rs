//! Which processor gets the next payment: the cheaper default whenever it is usable, the
//! fallback when the default's breaker is open, its service-health says failing, or it is
//! slow while the fallback is not.
//!
//! Each processor has a small breaker: `FAILURES_TO_OPEN` failures in a row open it for
//! `OPEN_FOR`; then one payment probes it (half-open) while the rest keep going elsewhere;
//! a success closes it. A service-health answer of `failing` keeps it out until the next
//! health answer, at most one health window away; an answer of "not failing" given after
//! the breaker opened closes it at once (fresher evidence than the failures).
//!
//! A processor is slow when it reports a minimum response time of at least `slow_after`,
//! or when one of our calls to it has been waiting that long (then until a faster answer
//! or a fast health report given since). A slow processor gets new payments only when
//! the other one is slow too, or unusable: a payment that waits long at a processor is
//! one its own summary holds before ours can (the contest's checks look 1.5 s back).

use super::client::Health;
use super::Which;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures in a row that open a processor's breaker.
const FAILURES_TO_OPEN: u32 = 3;
/// How long an open breaker keeps payments away before a probe.
const OPEN_FOR: Duration = Duration::from_millis(500);
/// The default for [`Routing::new`]'s `slow_after`.
pub const SLOW_AFTER: Duration = Duration::from_millis(1000);
/// How long one slow call keeps a processor slow without a health report saying so:
/// long enough for a health answer, short enough that a lost one costs little.
const SEEN_SLOW_MS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    /// `since_ms`: when it opened (wall clock), to compare with health answers.
    Open {
        until: Instant,
        since_ms: i64,
    },
    /// One probe is out; others wait for its answer.
    Probing,
}

#[derive(Debug)]
struct Processor {
    state: State,
    health_failing: bool,
    /// When the latest health answer applied was given.
    health_at_ms: i64,
    /// Its latest reported minimum response time.
    min_response_time: Duration,
    /// When a call of ours was seen waiting `slow_after` (wall clock ms), if it was not
    /// followed by a faster answer or health report.
    seen_slow_ms: Option<i64>,
}

impl Processor {
    fn new() -> Self {
        Self {
            state: State::Closed { failures: 0 },
            health_failing: false,
            health_at_ms: 0,
            min_response_time: Duration::ZERO,
            seen_slow_ms: None,
        }
    }

    fn slow(&self, slow_after: Duration, now_ms: i64) -> bool {
        self.seen_slow_ms
            .is_some_and(|since| now_ms.saturating_sub(since) < SEEN_SLOW_MS)
            || self.min_response_time >= slow_after
    }

    /// Whether this caller may send to it now (taking the probe if it is due).
    fn take(&mut self, now: Instant) -> bool {
        if self.health_failing {
            return false;
        }
        match self.state {
            State::Closed { .. } => true,
            State::Open { until, .. } if now >= until => {
                self.state = State::Probing;
                true
            }
            State::Open { .. } | State::Probing => false,
        }
    }
}

/// The routing state of one payments instance.
#[derive(Debug)]
pub struct Routing {
    processors: Mutex<[Processor; 2]>,
    slow_after: Duration,
}

impl Default for Routing {
    fn default() -> Self {
        Self::new(SLOW_AFTER)
    }
}

fn index(which: Which) -> usize {
    match which {
        Which::Default => 0,
        Which::Fallback => 1,
    }
}

impl Routing {
    /// Routing that counts a processor as slow from `slow_after`.
    pub fn new(slow_after: Duration) -> Self {
        Self {
            processors: Mutex::new([Processor::new(), Processor::new()]),
            slow_after,
        }
    }

    /// How long a call may wait before its processor counts as slow.
    pub fn slow_after(&self) -> Duration {
        self.slow_after
    }

    /// The processor for the next call, or `None` when neither is usable right now:
    /// the default before the fallback, a processor that is not slow before one that is.
    pub fn choose(&self) -> Option<Which> {
        let now = Instant::now();
        let mut p = self.processors.lock().ok()?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut order = [Which::Default, Which::Fallback];
        // Stable: among equals, the default stays first.
        order.sort_by_key(|&w| p[index(w)].slow(self.slow_after, now_ms));
        order.into_iter().find(|&w| p[index(w)].take(now))
    }

    /// A call to `which` has been waiting `slow_after`: it counts as slow from now.
    pub fn seen_slow(&self, which: Which) {
        if let Ok(mut p) = self.processors.lock() {
            let processor = &mut p[index(which)];
            if processor.seen_slow_ms.is_none() {
                tracing::info!(processor = which.name(), "processor slow");
            }
            processor.seen_slow_ms = Some(chrono::Utc::now().timestamp_millis());
        }
    }

    /// `which` answered a call after `took`: faster than `slow_after`, it is not slow.
    pub fn answered(&self, which: Which, took: Duration) {
        if took >= self.slow_after {
            return;
        }
        if let Ok(mut p) = self.processors.lock() {
            p[index(which)].seen_slow_ms = None;
        }
    }

    /// A call to `which` succeeded.
    pub fn succeeded(&self, which: Which) {
        if let Ok(mut p) = self.processors.lock() {
            p[index(which)].state = State::Closed { failures: 0 };
        }
    }

    /// A call to `which` failed or timed out.
    pub fn failed(&self, which: Which) {
        let Ok(mut p) = self.processors.lock() else {
            return;
        };
        let processor = &mut p[index(which)];
        processor.state = match processor.state {
            State::Closed { failures } if failures + 1 < FAILURES_TO_OPEN => State::Closed {
                failures: failures + 1,
            },
            open @ State::Open { .. } => open,
            _ => {
                tracing::info!(processor = which.name(), "breaker open");
                State::Open {
                    until: Instant::now() + OPEN_FOR,
                    since_ms: chrono::Utc::now().timestamp_millis(),
                }
            }
        };
    }

    /// A service-health answer of `which`, given at `at_ms` (repeats are ignored).
    pub fn health(&self, which: Which, health: Health, at_ms: i64) {
        let Ok(mut p) = self.processors.lock() else {
            return;
        };
        let processor = &mut p[index(which)];
        if at_ms <= processor.health_at_ms {
            return;
        }
        processor.health_at_ms = at_ms;
        if processor.health_failing != health.failing {
            tracing::info!(
                processor = which.name(),
                failing = health.failing,
                "service-health changed"
            );
        }
        processor.health_failing = health.failing;
        processor.min_response_time = Duration::from_millis(health.min_response_time);
        if processor
            .seen_slow_ms
            .is_some_and(|since| at_ms > since && processor.min_response_time < self.slow_after)
        {
            processor.seen_slow_ms = None;
        }
        if let State::Open { since_ms, .. } = processor.state {
            if !health.failing && at_ms > since_ms {
                processor.state = State::Closed { failures: 0 };
            }
        }
    }

    /// The latest minimum response time `which` reported (zero before any answer).
    pub fn min_response_time(&self, which: Which) -> Duration {
        self.processors
            .lock()
            .map(|p| p[index(which)].min_response_time)
            .unwrap_or_default()
    }

    /// No recent service-health answer for `which`: only the breaker decides.
    pub fn health_unknown(&self, which: Which) {
        if let Ok(mut p) = self.processors.lock() {
            p[index(which)].health_failing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_first_fallback_while_it_fails_and_back_after_a_probe() {
        let r = Routing::default();
        assert_eq!(r.choose(), Some(Which::Default));
        for _ in 0..FAILURES_TO_OPEN {
            r.failed(Which::Default);
        }
        assert_eq!(r.choose(), Some(Which::Fallback));
        std::thread::sleep(OPEN_FOR);
        // One probe goes to the default; the rest still go to the fallback.
        assert_eq!(r.choose(), Some(Which::Default));
        assert_eq!(r.choose(), Some(Which::Fallback));
        r.succeeded(Which::Default);
        assert_eq!(r.choose(), Some(Which::Default));
    }

    #[test]
    fn a_failing_health_answer_takes_a_processor_out_until_it_recovers() {
        let r = Routing::default();
        let failing = Health {
            failing: true,
            min_response_time: 0,
        };
        let ok = Health {
            failing: false,
            min_response_time: 0,
        };
        r.health(Which::Default, failing, 1);
        assert_eq!(r.choose(), Some(Which::Fallback));
        r.health(Which::Fallback, failing, 1);
        assert_eq!(r.choose(), None);
        r.health(Which::Default, ok, 2);
        assert_eq!(r.choose(), Some(Which::Default));

        // An answer given after the breaker opened closes it; an older one does not.
        for _ in 0..FAILURES_TO_OPEN {
            r.failed(Which::Default);
        }
        r.health(Which::Default, ok, 3);
        assert_eq!(r.choose(), None, "the fallback is still reported failing");
        r.health(
            Which::Default,
            ok,
            chrono::Utc::now().timestamp_millis() + 1,
        );
        assert_eq!(r.choose(), Some(Which::Default));
    }

    #[test]
    fn a_slow_processor_gets_new_payments_only_when_the_other_is_no_better() {
        let r = Routing::new(Duration::from_millis(1000));
        let at = |failing, ms| Health {
            failing,
            min_response_time: ms,
        };
        // Reported slow: the fallback takes new payments; both slow: the default again.
        r.health(Which::Default, at(false, 1000), 1);
        assert_eq!(r.choose(), Some(Which::Fallback));
        r.health(Which::Fallback, at(false, 5000), 1);
        assert_eq!(r.choose(), Some(Which::Default));
        // A slow fallback still beats a failing default.
        r.health(Which::Default, at(true, 0), 2);
        assert_eq!(r.choose(), Some(Which::Fallback));
        r.health(Which::Default, at(false, 999), 3);
        r.health(Which::Fallback, at(false, 0), 2);
        assert_eq!(r.choose(), Some(Which::Default));

        // Seen slow (a call still waiting): out until a faster answer...
        r.seen_slow(Which::Default);
        assert_eq!(r.choose(), Some(Which::Fallback));
        r.answered(Which::Default, Duration::from_millis(1500));
        assert_eq!(
            r.choose(),
            Some(Which::Fallback),
            "a slow answer changes nothing"
        );
        r.answered(Which::Default, Duration::from_millis(20));
        assert_eq!(r.choose(), Some(Which::Default));
        // ...or a fast health report given after it (an older one does not count).
        r.seen_slow(Which::Default);
        r.health(Which::Default, at(false, 0), 4);
        assert_eq!(r.choose(), Some(Which::Fallback));
        r.health(
            Which::Default,
            at(false, 0),
            chrono::Utc::now().timestamp_millis() + 1,
        );
        assert_eq!(r.choose(), Some(Which::Default));
    }
}
