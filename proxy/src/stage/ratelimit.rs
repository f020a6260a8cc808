//! Rate-limit stage: who is limited (the key, at its own limits when it has them, else at
//! its tier's; or the client IP, at the route's tier; or nobody), one token from the shared [`RateLimiter`], and the answer:
//! pass with the bucket's state for the response headers, 429 with `Retry-After` and the
//! `RateLimit-Policy` / `RateLimit` headers, or 503 when the limiter is unavailable and the
//! config says `closed`.

use crate::config::RateLimitMode;
use crate::ctx::RequestCtx;
use crate::limiter::{Policy, RateLimiter, RateOutcome, RateState};
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

/// Who a request is counted as, and at what.
struct Subject {
    /// The bucket: a key id, or `ip:<address>`.
    bucket: String,
    /// The tier, or the key's own limits.
    limits: Limits,
}

enum Limits {
    /// A configured tier, by name.
    Tier(String),
    /// A key's own limits, named `key_<id>` in the headers.
    Own(String, crate::config::Tier),
}

/// The bucket a request is counted in and what it is counted at, or `None` when the
/// route does not limit this request.
fn subject(session: &Session, ctx: &RequestCtx) -> Option<Subject> {
    match &ctx.route.as_ref()?.config.ratelimit {
        RateLimitMode::Off => None,
        RateLimitMode::Key => ctx.key.as_ref().map(|k| Subject {
            bucket: k.id.clone(),
            limits: match k.limits {
                Some(own) => Limits::Own(
                    format!("key_{}", k.id),
                    crate::config::Tier {
                        rate_per_s: own.rate_per_s,
                        burst: own.burst,
                    },
                ),
                None => Limits::Tier(k.tier.clone()),
            },
        }),
        RateLimitMode::Ip { tier } => {
            let ip =
                client_ip(session, ctx).map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
            Some(Subject {
                bucket: format!("ip:{ip}"),
                limits: Limits::Tier(tier.clone()),
            })
        }
    }
}

/// A pass (with the bucket's state for the response headers), or the answer to send.
fn verdict(policy: &Policy<'_>, outcome: RateOutcome) -> Result<RateState, Refusal> {
    match outcome {
        RateOutcome::Allowed(state) => Ok(state),
        RateOutcome::Limited(state, retry_after) => Err(Refusal::new(
            429,
            code::RATE_LIMITED,
            if policy.label == "own" {
                format!("this key's own rate limit exceeded; retry in {retry_after} s")
            } else {
                format!(
                    "rate limit of tier {} exceeded; retry in {retry_after} s",
                    policy.name
                )
            },
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
        let Some(subject) = subject(session, ctx) else {
            return Ok(Step::Continue);
        };
        let config = &ctx.snapshot.config;
        let policy = match &subject.limits {
            Limits::Own(name, limits) => Policy {
                name,
                label: "own",
                limits: *limits,
            },
            Limits::Tier(tier_name) => match config.tiers.get(tier_name) {
                Some(tier) => Policy::tier(tier_name, *tier),
                None => {
                    return Ok(Step::Respond(Refusal::new(
                        403,
                        "unknown_tier",
                        format!("the key's tier \"{tier_name}\" is not configured"),
                    )))
                }
            },
        };
        let started = std::time::Instant::now();
        let (outcome, mode) = self
            .limiter
            .check(
                &subject.bucket,
                &policy,
                &config.ratelimit,
                config.redis_timeout,
            )
            .await;
        ctx.limiter = Some(mode);
        ctx.timings.push(("ratelimit", started.elapsed()));
        Ok(match verdict(&policy, outcome) {
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

    fn free() -> Policy<'static> {
        Policy::tier(
            "free",
            crate::config::Tier {
                rate_per_s: 10.0,
                burst: 10,
            },
        )
    }

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
        let r = verdict(&free(), RateOutcome::Limited(state(), 3)).expect_err("refused");
        assert_eq!(r.status, 429);
        assert!(r.is_rate_limited());
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["retry-after", "ratelimit-policy", "ratelimit"]);
        assert_eq!(r.headers[0].1, "3");
    }

    #[test]
    fn an_unavailable_limiter_is_503_and_a_pass_is_no_refusal() {
        let r = verdict(&free(), RateOutcome::Unavailable).expect_err("refused");
        assert_eq!((r.status, r.code), (503, "ratelimit_unavailable"));
        assert!(verdict(&free(), RateOutcome::Allowed(state())).is_ok());
    }
}
