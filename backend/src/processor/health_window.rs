//! The processor's limit on `GET /payments/service-health`: one call per fixed window
//! (5 s in the contest); a call that finds its window taken waits for the next free one,
//! up to `queue` windows ahead; beyond that it is refused (429).

/// What happens to one health call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Answer now.
    Now,
    /// Answer when this instant (ms since the Unix epoch) arrives: the call was queued.
    At(u64),
    /// Refuse with 429.
    Rejected,
}

/// Fixed-window admission state.
#[derive(Debug, Clone)]
pub struct HealthWindow {
    window_ms: u64,
    queue: u64,
    /// The first window with no call assigned to it yet.
    next_free: u64,
}

impl HealthWindow {
    /// `window_ms` long windows; up to `queue` calls wait for later windows.
    pub fn new(window_ms: u64, queue: u64) -> Self {
        Self {
            window_ms: window_ms.max(1),
            queue,
            next_free: 0,
        }
    }

    /// Admits a call arriving at `now_ms`.
    pub fn admit(&mut self, now_ms: u64) -> Admission {
        let current = now_ms / self.window_ms;
        if self.next_free <= current {
            self.next_free = current + 1;
            Admission::Now
        } else if self.next_free - current <= self.queue {
            let at = self.next_free * self.window_ms;
            self.next_free += 1;
            Admission::At(at)
        } else {
            Admission::Rejected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_per_window_two_queued_then_refused() {
        let mut w = HealthWindow::new(5000, 2);
        assert_eq!(w.admit(10_100), Admission::Now);
        assert_eq!(w.admit(10_200), Admission::At(15_000));
        assert_eq!(w.admit(10_300), Admission::At(20_000));
        assert_eq!(w.admit(10_400), Admission::Rejected);
        // The queued calls own windows 3 and 4; the next free one is 5.
        assert_eq!(w.admit(15_000), Admission::At(25_000));
        assert_eq!(w.admit(30_000), Admission::Now);
        // Exactly one window later is a new window.
        assert_eq!(w.admit(35_000), Admission::Now);
        assert_eq!(w.admit(39_999), Admission::At(40_000));
    }
}
