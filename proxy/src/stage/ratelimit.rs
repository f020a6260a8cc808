//! Rate-limit stage: who is limited (the key, at the key's tier; or the client IP, at the
//! route's tier; or nobody), one token from the shared [`RateLimiter`], and the answer:
//! pass with the bucket's state for the response headers, 429 with `Retry-After` and the
//! `RateLimit-Policy` / `RateLimit` headers, or 503 when the limiter is unavailable and the
//! config says `closed`.

use crate::config::RateLimitMode;
use crate::ctx::RequestCtx;
use crate::limiter::{RateLimiter, RateOutcome, RateState};
use crate::redis_conn::RedisConn;
use crate::respond::{code, Refusal};
use crate::stage::{client_ip, RequestStage, Step};
use pingora_core::Result;
use pingora_proxy::Session;
use std::sync::Arc;

/// The rate-limit stage and its limiter (buckets in Redis, leases, the local fallback).
pub struct RateLimitStage {
    limiter: RateLimiter,
}

impl RateLimitStage {
    /// A stage taking its tokens from Redis over `conn` (none: the fallback decides).
    pub fn new(conn: Option<Arc<RedisConn>>) -> Self {
        Self {
            limiter: RateLimiter::new(conn),
        }
    }
}

/// The bucket a request is counted in and the tier it is counted at, or `None` when the
/// route does not limit this request.
fn subject(session: &Session, ctx: &RequestCtx) -> Option<(String, String)> {
    match &ctx.route.as_ref()?.config.ratelimit {
        RateLimitMode::Off => None,
        RateLimitMode::Key => ctx.key.as_ref().map(|k| (k.id.clone(), k.tier.clone())),
        RateLimitMode::Ip { tier } => {
            let ip =
                client_ip(session, ctx).map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
            Some((format!("ip:{ip}"), tier.clone()))
        }
    }
}

/// A pass (with the bucket's state for the response headers), or the answer to send.
fn verdict(tier_name: &str, outcome: RateOutcome) -> Result<RateState, Refusal> {
    match outcome {
        RateOutcome::Allowed(state) => Ok(state),
        RateOutcome::Limited(state, retry_after) => Err(Refusal::new(
            429,
            code::RATE_LIMITED,
            format!("rate limit of tier {tier_name} exceeded; retry in {retry_after} s"),
        )
        .with_header("retry-after", retry_after.to_string())
        .with_header("ratelimit-policy", state.policy_header())
        .with_header("ratelimit", state.limit_header())),
        RateOutcome::Unavailable => Err(Refusal::new(
            503,
            "ratelimit_unavailable",
            "the rate limiter is unavailable; try again shortly",
        )),
    }
}

impl RequestStage for RateLimitStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Step> {
        let Some((subject, tier_name)) = subject(session, ctx) else {
            return Ok(Step::Continue);
        };
        let config = &ctx.snapshot.config;
        let Some(tier) = config.tiers.get(&tier_name) else {
            return Ok(Step::Respond(Refusal::new(
                403,
                "unknown_tier",
                format!("the key's tier \"{tier_name}\" is not configured"),
            )));
        };
        let started = std::time::Instant::now();
        let (outcome, mode) = self
            .limiter
            .check(
                &subject,
                &tier_name,
                tier,
                &config.ratelimit,
                config.redis_timeout,
            )
            .await;
        ctx.limiter = Some(mode);
        ctx.timings.push(("ratelimit", started.elapsed()));
        Ok(match verdict(&tier_name, outcome) {
            Ok(state) => {
                ctx.rate = Some(state);
                Step::Continue
            }
            Err(refusal) => Step::Respond(refusal),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RateState {
        RateState {
            tier: "free".into(),
            burst: 10,
            window_s: 1,
            remaining: 0,
            reset_s: 1,
        }
    }

    #[test]
    fn a_limited_request_gets_429_with_retry_after_and_the_draft_headers() {
        let r = verdict("free", RateOutcome::Limited(state(), 3)).expect_err("refused");
        assert_eq!(r.status, 429);
        assert!(r.is_rate_limited());
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["retry-after", "ratelimit-policy", "ratelimit"]);
        assert_eq!(r.headers[0].1, "3");
    }

    #[test]
    fn an_unavailable_limiter_is_503_and_a_pass_is_no_refusal() {
        let r = verdict("free", RateOutcome::Unavailable).expect_err("refused");
        assert_eq!((r.status, r.code), (503, "ratelimit_unavailable"));
        assert!(verdict("free", RateOutcome::Allowed(state())).is_ok());
    }
}
