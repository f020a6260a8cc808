//! The rate limiter shared by every request: a token bucket per subject (an API key id or
//! a client IP), held in Redis and updated by one Lua script, so any number of instances
//! share one exact limit. The rate-limit stage (`stage/ratelimit.rs`) decides the subject
//! and the tier and turns the verdict into headers or a refusal.
//!
//! When Redis fails or is slower than `redis.timeout_ms`, `ratelimit.on_redis_error`
//! decides: `local` (an in-process bucket at rate / expected_instances), `open` (allow)
//! or `closed` (503). The mode of every decision is in
//! `sluice_ratelimit_decisions_total{tier,decision,mode}`.

pub mod bucket;
pub mod failures;
pub mod lease;

use crate::config::{OnRedisError, RateLimitConfig, Tier};
use crate::metrics::metrics;
use crate::redis_conn::RedisConn;
use bucket::LocalBucket;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the response headers say about the subject's bucket.
#[derive(Debug, Clone)]
pub struct RateState {
    /// Tier name (the policy name in the headers).
    pub tier: String,
    /// Bucket size (`q`).
    pub burst: u64,
    /// Seconds to fill an empty bucket (`w`).
    pub window_s: u64,
    /// Whole tokens left (`r`).
    pub remaining: u64,
    /// Seconds until the bucket is full again (`t`).
    pub reset_s: u64,
}

impl RateState {
    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers).
    pub fn policy_header(&self) -> String {
        format!("\"{}\";q={};w={}", self.tier, self.burst, self.window_s)
    }

    /// `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
    pub fn limit_header(&self) -> String {
        format!("\"{}\";r={};t={}", self.tier, self.remaining, self.reset_s)
    }
}

/// How a decision was made: by Redis (or a lease of Redis tokens), or by the
/// `on_redis_error` fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterMode {
    /// Redis decided (directly or through this instance's lease).
    Redis,
    /// Redis failed: the in-process bucket decided.
    Local,
    /// Redis failed: allowed without a limit.
    Open,
    /// Redis failed: refused.
    Closed,
}

impl LimiterMode {
    /// The spelling in metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Local => "local",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    fn fallback(on_error: OnRedisError) -> Self {
        match on_error {
            OnRedisError::Local => Self::Local,
            OnRedisError::Open => Self::Open,
            OnRedisError::Closed => Self::Closed,
        }
    }
}

/// The limiter's verdict.
#[derive(Debug, Clone)]
pub enum RateOutcome {
    /// Pass; headers from the state.
    Allowed(RateState),
    /// 429 with `Retry-After` (whole seconds, at least 1).
    Limited(RateState, u64),
    /// Redis failed and the mode is `closed`: 503.
    Unavailable,
}

/// What a subject is limited at: a tier, or an API key's own limits.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// Its name in `RateLimit-Policy` / `RateLimit`: the tier's, or `key_<id>`.
    pub name: &'a str,
    /// The `tier` label in metrics: the tier's name, or `own` (one series for every key
    /// with its own limits, so the label's values stay few).
    pub label: &'a str,
    /// Rate and burst.
    pub limits: Tier,
}

impl<'a> Policy<'a> {
    /// The policy of the tier `name`.
    pub fn tier(name: &'a str, limits: Tier) -> Self {
        Self {
            name,
            label: name,
            limits,
        }
    }
}

/// Process-wide limiter state.
pub struct RateLimiter {
    conn: Option<Arc<RedisConn>>,
    script: redis::Script,
    local: Mutex<HashMap<String, LocalBucket>>,
    leases: lease::Leases,
}

/// Bound on local buckets; past it the map starts over (only reached in long outages
/// with very many clients, when the limit is approximate anyway).
const MAX_LOCAL_BUCKETS: usize = 100_000;

fn state(tier_name: &str, tier: &Tier, tokens: f64) -> RateState {
    let missing = (tier.burst as f64 - tokens).max(0.0);
    RateState {
        tier: tier_name.to_string(),
        burst: tier.burst,
        window_s: (tier.burst as f64 / tier.rate_per_s).ceil() as u64,
        remaining: tokens.max(0.0).floor() as u64,
        reset_s: (missing / tier.rate_per_s).ceil() as u64,
    }
}

fn whole_seconds(s: f64) -> u64 {
    (s.ceil() as u64).max(1)
}

impl RateLimiter {
    /// A limiter over `conn` (none: every decision takes the fallback).
    pub fn new(conn: Option<Arc<RedisConn>>) -> Self {
        Self {
            conn,
            script: redis::Script::new(include_str!("bucket.lua")),
            local: Mutex::new(HashMap::new()),
            leases: lease::Leases::default(),
        }
    }

    /// Takes one token from `subject`'s bucket; also says how it decided.
    pub async fn check(
        &self,
        subject: &str,
        policy: &Policy<'_>,
        cfg: &RateLimitConfig,
        timeout: Duration,
    ) -> (RateOutcome, LimiterMode) {
        let (tier_name, tier) = (policy.name, &policy.limits);
        let now = tokio::time::Instant::now();
        let (outcome, mode) = match self.local_decision(subject, tier_name, tier, now) {
            Some(outcome) => (outcome, LimiterMode::Redis),
            None => match self
                .redis_take(subject, tier, lease::lease_size(tier), timeout)
                .await
            {
                Some((granted, tokens, retry_after)) => {
                    // The lease and the denial count from when Redis answered, not from
                    // when this request asked: under load the round trip can outlast a
                    // lease, whose tokens would then arrive already expired and be lost
                    // (seen: a leased tier admitted 2–3 % under its limit on a busy box).
                    let answered = tokio::time::Instant::now();
                    self.leases
                        .remember(subject, answered, granted, tokens, retry_after);
                    let st = state(tier_name, tier, tokens);
                    let outcome = if granted > 0 {
                        RateOutcome::Allowed(st)
                    } else {
                        RateOutcome::Limited(st, whole_seconds(retry_after.as_secs_f64()))
                    };
                    (outcome, LimiterMode::Redis)
                }
                None => (
                    self.fallback(subject, tier_name, tier, cfg),
                    LimiterMode::fallback(cfg.on_redis_error),
                ),
            },
        };
        let decision = match &outcome {
            RateOutcome::Allowed(_) => "allowed",
            RateOutcome::Limited(..) => "limited",
            RateOutcome::Unavailable => "unavailable",
        };
        metrics()
            .ratelimit_decisions
            .with_label_values(&[policy.label, decision, mode.as_str()])
            .inc();
        (outcome, mode)
    }

    /// A decision this instance can make exactly without Redis (see `lease`).
    fn local_decision(
        &self,
        subject: &str,
        tier_name: &str,
        tier: &Tier,
        now: tokio::time::Instant,
    ) -> Option<RateOutcome> {
        let conn = self.conn.as_ref()?;
        if conn.is_down() {
            return None;
        }
        Some(match self.leases.try_local(subject, now)? {
            lease::LocalDecision::Allowed { remaining } => {
                RateOutcome::Allowed(state(tier_name, tier, remaining))
            }
            lease::LocalDecision::Denied { retry_after } => RateOutcome::Limited(
                state(tier_name, tier, 0.0),
                whole_seconds(retry_after.as_secs_f64()),
            ),
        })
    }

    /// Asks Redis for up to `want` tokens: (granted, tokens left, time until one token).
    async fn redis_take(
        &self,
        subject: &str,
        tier: &Tier,
        want: u64,
        timeout: Duration,
    ) -> Option<(u64, f64, Duration)> {
        let conn = self.conn.as_ref()?;
        let mut invocation = self.script.key(format!("sluice:bucket:{subject}"));
        invocation.arg(tier.rate_per_s).arg(tier.burst).arg(want);
        // `invoke_async` sends EVALSHA and falls back to EVAL on NOSCRIPT.
        let result = conn
            .call(timeout, |mut c| async move {
                invocation.invoke_async::<(i64, String, i64)>(&mut c).await
            })
            .await;
        match result {
            Ok((granted, tokens, retry_us)) => Some((
                u64::try_from(granted).unwrap_or(0),
                tokens.parse().unwrap_or(0.0),
                Duration::from_micros(u64::try_from(retry_us).unwrap_or(0)),
            )),
            Err(e) => {
                tracing::debug!(error = %e, "rate limit: redis unavailable, using the fallback");
                None
            }
        }
    }

    fn fallback(
        &self,
        subject: &str,
        tier_name: &str,
        tier: &Tier,
        cfg: &RateLimitConfig,
    ) -> RateOutcome {
        match cfg.on_redis_error {
            OnRedisError::Open => RateOutcome::Allowed(state(tier_name, tier, tier.burst as f64)),
            OnRedisError::Closed => RateOutcome::Unavailable,
            OnRedisError::Local => {
                let share = f64::from(cfg.expected_instances);
                let local = Tier {
                    rate_per_s: tier.rate_per_s / share,
                    burst: ((tier.burst as f64 / share).floor() as u64).max(1),
                };
                let now = tokio::time::Instant::now();
                let Ok(mut buckets) = self.local.lock() else {
                    return RateOutcome::Allowed(state(tier_name, &local, 0.0));
                };
                if buckets.len() >= MAX_LOCAL_BUCKETS && !buckets.contains_key(subject) {
                    buckets.clear();
                }
                let bucket = buckets
                    .entry(subject.to_string())
                    .or_insert_with(|| LocalBucket::full(local.burst as f64, now));
                let take = bucket.take(now, local.rate_per_s, local.burst as f64);
                let st = state(tier_name, &local, take.tokens);
                if take.allowed {
                    RateOutcome::Allowed(st)
                } else {
                    RateOutcome::Limited(st, whole_seconds(take.retry_after_s))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_draft() {
        let tier = Tier {
            rate_per_s: 10.0,
            burst: 100,
        };
        let st = state("free", &tier, 42.7);
        assert_eq!(st.policy_header(), "\"free\";q=100;w=10");
        assert_eq!(st.limit_header(), "\"free\";r=42;t=6");
    }

    #[tokio::test(start_paused = true)]
    async fn without_redis_each_mode_does_what_it_says() {
        let limiter = RateLimiter::new(None);
        let tier = Tier {
            rate_per_s: 10.0,
            burst: 4,
        };
        let mut cfg = RateLimitConfig {
            on_redis_error: OnRedisError::Local,
            expected_instances: 2,
        };
        let t = Duration::from_millis(5);
        let free = Policy::tier("free", tier);
        let local: Vec<bool> =
            futures_util::future::join_all((0..4).map(|_| limiter.check("k", &free, &cfg, t)))
                .await
                .into_iter()
                .map(|(o, _)| matches!(o, RateOutcome::Allowed(_)))
                .collect();
        assert_eq!(
            local,
            vec![true, true, false, false],
            "local: burst / expected_instances"
        );

        cfg.on_redis_error = OnRedisError::Open;
        assert!(matches!(
            limiter
                .check("k", &Policy::tier("free", tier), &cfg, t)
                .await
                .0,
            RateOutcome::Allowed(_)
        ));
        cfg.on_redis_error = OnRedisError::Closed;
        assert!(matches!(
            limiter
                .check("k", &Policy::tier("free", tier), &cfg, t)
                .await
                .0,
            RateOutcome::Unavailable
        ));
    }
}
