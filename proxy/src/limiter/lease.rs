//! What an instance may decide without asking Redis, exactly.
//!
//! - **Denials**: Redis said the next token appears in `retry_after`; until then no token
//!   can exist, so denying locally until that instant is exact. An over-limit client then
//!   costs no Redis round trip per request.
//! - **Leases** (high-rate tiers only): one Redis call takes a few tokens at once and this
//!   instance spends them locally. Tokens leave the shared bucket when leased, so the
//!   limit is never exceeded by more than one lease; a lease is at most 1% of the burst
//!   and 10 ms of refill, and expires soon, so an idle instance cannot hoard old tokens.
//!   Tiers slower than 100 tokens per 10 ms... i.e. where a lease would be 1, are not
//!   leased: every request is one Redis call, as exact as it gets.

use crate::config::Tier;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Largest lease.
const MAX_LEASE: u64 = 64;
/// A lease is at most this much refill time...
const LEASE_REFILL: Duration = Duration::from_millis(10);
/// ...and lives at most this long: long enough that an instance whose clients stall for
/// a moment (a busy box) still spends what it leased — each lease that expires unspent is
/// tokens the limit never admits (at 50 ms a leased tier ran up to 3 % under its limit
/// on this 2-core machine; at 250 ms, 0.1–0.4 %) — and short enough that an idle
/// instance does not sit on tokens another instance could use.
const LEASE_TTL: Duration = Duration::from_millis(250);
/// Bound on remembered subjects.
const MAX_SUBJECTS: usize = 100_000;

/// Tokens to ask for per Redis call for `tier` (1 = no leasing).
pub fn lease_size(tier: &Tier) -> u64 {
    let by_refill = (tier.rate_per_s * LEASE_REFILL.as_secs_f64()).floor() as u64;
    let by_burst = tier.burst / 100;
    by_refill.min(by_burst).clamp(1, MAX_LEASE)
}

#[derive(Debug, Clone, Copy)]
struct Local {
    /// Leased tokens left, and until when they may be spent.
    tokens: u64,
    lease_until: Instant,
    /// No token exists before this instant (from Redis's last denial).
    denied_until: Instant,
    /// Tokens the bucket had after the last Redis call (for the `RateLimit` header).
    bucket_tokens: f64,
}

/// A decision made locally.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LocalDecision {
    /// A leased token was spent; `remaining` is an estimate for the header.
    Allowed {
        /// Tokens this instance still holds plus what the bucket had.
        remaining: f64,
    },
    /// Denied until the known instant.
    Denied {
        /// Time until a token exists.
        retry_after: Duration,
    },
}

/// Per-subject leases and denials of this instance.
#[derive(Default)]
pub struct Leases {
    subjects: Mutex<HashMap<String, Local>>,
}

impl Leases {
    /// Decides locally if possible: tokens already held are spent first (they left the
    /// shared bucket when leased), then a known denial applies.
    pub fn try_local(&self, subject: &str, now: Instant) -> Option<LocalDecision> {
        let mut subjects = self.subjects.lock().ok()?;
        let local = subjects.get_mut(subject)?;
        if local.tokens > 0 && now < local.lease_until {
            local.tokens -= 1;
            return Some(LocalDecision::Allowed {
                remaining: local.bucket_tokens + local.tokens as f64,
            });
        }
        if now < local.denied_until {
            return Some(LocalDecision::Denied {
                retry_after: local.denied_until - now,
            });
        }
        None
    }

    /// Remembers what Redis answered: `granted` tokens (one of which the current
    /// request uses), or a denial for `retry_after`. Concurrent requests of this instance
    /// may each have asked; their grants add up rather than replace each other, so no
    /// leased token is dropped.
    pub fn remember(
        &self,
        subject: &str,
        now: Instant,
        granted: u64,
        bucket_tokens: f64,
        retry_after: Duration,
    ) {
        let Ok(mut subjects) = self.subjects.lock() else {
            return;
        };
        if subjects.len() >= MAX_SUBJECTS && !subjects.contains_key(subject) {
            subjects.clear();
        }
        let local = subjects.entry(subject.to_string()).or_insert(Local {
            tokens: 0,
            lease_until: now,
            denied_until: now,
            bucket_tokens,
        });
        local.bucket_tokens = bucket_tokens;
        if granted == 0 {
            local.denied_until = local.denied_until.max(now + retry_after);
            return;
        }
        let held = if now < local.lease_until {
            local.tokens
        } else {
            0
        };
        local.tokens = held + granted - 1;
        local.lease_until = now + LEASE_TTL;
        local.denied_until = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fast_tiers_are_leased_and_never_more_than_a_percent_of_the_burst() {
        assert_eq!(
            lease_size(&Tier {
                rate_per_s: 10.0,
                burst: 100
            }),
            1
        );
        assert_eq!(
            lease_size(&Tier {
                rate_per_s: 100.0,
                burst: 100
            }),
            1
        );
        assert_eq!(
            lease_size(&Tier {
                rate_per_s: 1000.0,
                burst: 10_000
            }),
            10
        );
        assert_eq!(
            lease_size(&Tier {
                rate_per_s: 1000.0,
                burst: 500
            }),
            5
        );
        assert_eq!(
            lease_size(&Tier {
                rate_per_s: 1e6,
                burst: 1_000_000
            }),
            MAX_LEASE
        );
    }

    #[tokio::test(start_paused = true)]
    async fn denials_hold_until_the_next_token_and_leases_run_out_or_expire() {
        let leases = Leases::default();
        let now = Instant::now();
        assert_eq!(leases.try_local("k", now), None, "nothing known: ask Redis");

        leases.remember("k", now, 0, 0.4, Duration::from_millis(60));
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(
            leases.try_local("k", Instant::now()),
            Some(LocalDecision::Denied {
                retry_after: Duration::from_millis(50)
            })
        );
        tokio::time::advance(Duration::from_millis(50)).await;
        assert_eq!(
            leases.try_local("k", Instant::now()),
            None,
            "the token exists now: ask Redis"
        );

        leases.remember("k", Instant::now(), 3, 7.0, Duration::ZERO);
        assert!(matches!(
            leases.try_local("k", Instant::now()),
            Some(LocalDecision::Allowed { .. })
        ));
        assert!(matches!(
            leases.try_local("k", Instant::now()),
            Some(LocalDecision::Allowed { .. })
        ));
        assert_eq!(
            leases.try_local("k", Instant::now()),
            None,
            "3 granted: 1 used by the caller, 2 here"
        );

        leases.remember("k", Instant::now(), 5, 7.0, Duration::ZERO);
        tokio::time::advance(LEASE_TTL).await;
        assert_eq!(
            leases.try_local("k", Instant::now()),
            None,
            "an expired lease is not spent"
        );
    }
}
