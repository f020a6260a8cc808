//! Body limit stage: a route's `max_body_bytes` (10 MiB unless set; 0 for none).
//!
//! A `Content-Length` over the limit is refused with 413 in `request_filter`, before the
//! upstream is contacted. A body without a length (chunked) is counted as it streams
//! through `request_body_filter`: once it passes the limit, the upstream request is
//! aborted and the client gets the same 413. Either way the connection is closed after
//! the answer, since the rest of the body was not read.

use crate::ctx::RequestCtx;
use crate::metrics::metrics;
use crate::respond::Refusal;
use crate::stage::{RequestStage, Step};
use http::header::CONTENT_LENGTH;
use pingora_core::{Error, ErrorType, Result};
use pingora_proxy::Session;

/// Refuses request bodies larger than the route allows.
#[derive(Debug, Default)]
pub struct BodyLimitStage;

fn too_large(limit: u64) -> Refusal {
    metrics()
        .refusals
        .with_label_values(&["body_too_large"])
        .inc();
    Refusal::new(
        413,
        "body_too_large",
        format!("the request body may hold at most {limit} bytes"),
    )
}

fn limit(ctx: &RequestCtx) -> Option<u64> {
    ctx.route.as_ref().and_then(|r| r.config.max_body_bytes)
}

impl RequestStage for BodyLimitStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Step> {
        let Some(limit) = limit(ctx) else {
            return Ok(Step::Continue);
        };
        // The limits stage already refused several lengths; an unparsable one is Pingora's.
        let declared = session
            .req_header()
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            session.set_keepalive(None);
            return Ok(Step::Respond(too_large(limit)));
        }
        Ok(Step::Continue)
    }
}

impl BodyLimitStage {
    /// `request_body_filter`: after each chunk, the body read so far against the limit.
    pub fn chunk(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let Some(limit) = limit(ctx) else {
            return Ok(());
        };
        let read = u64::try_from(session.body_bytes_read()).unwrap_or(u64::MAX);
        if read <= limit || ctx.refusal.is_some() {
            return Ok(());
        }
        session.set_keepalive(None);
        ctx.refusal = Some(too_large(limit));
        Error::e_explain(
            ErrorType::InvalidHTTPHeader,
            "request body over the route's max_body_bytes",
        )
    }
}
