//! Log stage: the end of every request — `sluice_requests_total` and
//! `sluice_request_duration_seconds` by route, and the request's event handed to the
//! Kafka sink (never awaited: the sink queues or drops, the producer runs elsewhere).

use crate::ctx::RequestCtx;
use crate::kafka::EventSink;
use crate::metrics::{metrics, status_label};
use crate::respond::Refusal;
use pingora_proxy::Session;
use sluice_event::RequestEvent;
use std::sync::Arc;

/// Records each finished request.
pub struct LogStage {
    events: Arc<EventSink>,
}

impl LogStage {
    /// Events go to `events` (when it is enabled).
    pub fn new(events: Arc<EventSink>) -> Self {
        Self { events }
    }

    /// `logging`: metrics and the event for a request that ended with `status` sent
    /// downstream (0: none).
    pub fn run(&self, session: &Session, ctx: &RequestCtx, status: u16) {
        if self.events.enabled() {
            self.events
                .emit(request_event(session, ctx, status, self.events.next_id()));
        }
        let m = metrics();
        let route = ctx.route_name();
        m.requests
            .with_label_values(&[route, status_label(status)])
            .inc();
        m.request_duration
            .with_label_values(&[route])
            .observe(ctx.started.elapsed().as_secs_f64());
    }
}

/// The event for a finished request (`status` as sent downstream, 0 for none).
fn request_event(session: &Session, ctx: &RequestCtx, status: u16, id: String) -> RequestEvent {
    let elapsed = ctx.started.elapsed();
    let ts = std::time::SystemTime::now()
        .checked_sub(elapsed)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let req = session.req_header();
    RequestEvent {
        v: sluice_event::VERSION,
        id,
        ts,
        route: ctx.route_name().to_string(),
        method: req.method.as_str().to_string(),
        path: req.uri.path().to_string(),
        status,
        key_id: ctx.key.as_ref().map(|k| k.id.clone()),
        tier: ctx
            .rate
            .as_ref()
            .map(|r| r.tier.clone())
            .or_else(|| ctx.key.as_ref().map(|k| k.tier.clone())),
        client_ip: session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string()),
        upstream: match (&ctx.route, &ctx.peer) {
            (Some(route), Some(peer)) => Some(route.upstream.label(peer).to_string()),
            _ => None,
        },
        latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        upstream_latency_us: ctx
            .upstream_latency
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        breaker: breaker_state(ctx).map(str::to_string),
        bytes_in: session.body_bytes_read() as u64,
        bytes_out: session.body_bytes_sent() as u64,
        limited: ctx.refusal.as_ref().is_some_and(Refusal::is_rate_limited),
        limiter: ctx.limiter.map(|mode| mode.as_str().to_string()),
        hedged: ctx.hedged,
        retries: u32::try_from(ctx.attempts.saturating_sub(1 + usize::from(ctx.hedged)))
            .unwrap_or(u32::MAX),
    }
}

/// The answering peer's breaker state as the request ends, or `open` when the request was
/// refused because every breaker was open. Read here, not on the request path: only the
/// event wants it.
fn breaker_state(ctx: &RequestCtx) -> Option<&'static str> {
    if ctx.refusal.as_ref().is_some_and(Refusal::is_circuit_open) {
        return Some("open");
    }
    let (route, peer) = (ctx.route.as_ref()?, ctx.peer.as_ref()?);
    route.upstream.breaker_state(peer).map(|s| s.as_str())
}
