//! Headers stage: what sluice adds to every response it passes on, proxied or hedged —
//! `Server-Timing` for the stages that waited on something, `X-Request-Id`, the CORS
//! headers of an allowed cross-origin request, the caller's rate-limit state
//! (`RateLimit-Policy`, `RateLimit`), and `X-Sluice-Upstream` when the config asks.

use crate::ctx::RequestCtx;
use crate::own_headers::{OwnHeader, RATELIMIT, RATELIMIT_POLICY, X_REQUEST_ID, X_SLUICE_UPSTREAM};
use crate::stage::cors::CorsStage;
use http::HeaderValue;
use pingora_core::{ErrorType, OrErr, Result};
use pingora_http::ResponseHeader;

/// Adds sluice's headers to upstream responses.
#[derive(Debug, Default)]
pub struct HeadersStage;

impl HeadersStage {
    /// `response_filter` (and the hedge stage's answer): decorates `response`.
    pub fn response(&self, response: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
        if let Some(timing) = ctx.server_timing() {
            response.append_header("server-timing", timing)?;
        }
        if let Some(id) = &ctx.request_id {
            set(response, &X_REQUEST_ID, id.clone())?;
        }
        CorsStage.response(response, ctx)?;
        if let Some(rate) = &ctx.rate {
            set(response, &RATELIMIT_POLICY, value(&rate.policy_header())?)?;
            set(response, &RATELIMIT, value(&rate.limit_header())?)?;
        }
        if ctx.snapshot.config.server.upstream_header {
            if let (Some(route), Some(peer)) = (&ctx.route, &ctx.peer) {
                set(
                    response,
                    &X_SLUICE_UPSTREAM,
                    route.upstream.label_value(peer),
                )?;
            }
        }
        Ok(())
    }
}

/// A header value of ours; the same error as Pingora's `insert_header` when it is not one.
fn value(text: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(text).or_err(ErrorType::InvalidHTTPHeader, "invalid value while insert")
}

/// Sets one of our headers (replacing any value of that name).
fn set(response: &mut ResponseHeader, header: &OwnHeader, value: HeaderValue) -> Result<()> {
    response.insert_parsed_header(header.name().clone(), header.as_str(), value)
}
