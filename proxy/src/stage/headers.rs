//! Headers stage: what sluice adds to every response it passes on, proxied or hedged —
//! `Server-Timing` for the stages that waited on something, `X-Request-Id`, the CORS
//! headers of an allowed cross-origin request, the caller's rate-limit state
//! (`RateLimit-Policy`, `RateLimit`), and `X-Sluice-Upstream` when the config asks.

use crate::ctx::RequestCtx;
use crate::ids::X_REQUEST_ID;
use crate::stage::cors::CorsStage;
use pingora_core::Result;
use pingora_http::ResponseHeader;

/// Response header naming the peer that answered.
const UPSTREAM_HEADER: &str = "x-sluice-upstream";

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
            response.insert_header(X_REQUEST_ID, id.as_str())?;
        }
        CorsStage.response(response, ctx)?;
        if let Some(rate) = &ctx.rate {
            response.insert_header("ratelimit-policy", rate.policy_header())?;
            response.insert_header("ratelimit", rate.limit_header())?;
        }
        if ctx.snapshot.config.server.upstream_header {
            if let (Some(route), Some(peer)) = (&ctx.route, &ctx.peer) {
                response.insert_header(UPSTREAM_HEADER, route.upstream.label(peer))?;
            }
        }
        Ok(())
    }
}
