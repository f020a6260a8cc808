//! Log stage: the end of every request — `sluice_requests_total` and
//! `sluice_request_duration_seconds` by route, and the request's event handed to the
//! Kafka sink (never awaited: the sink queues or drops, the producer runs elsewhere), and
//! its access log line (the same: offered to a bounded queue).

use crate::access_log::{AccessLine, AccessLog};
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
    access_log: Arc<AccessLog>,
}

impl LogStage {
    /// Events go to `events` (when it is enabled), lines to `access_log` (when it is on).
    pub fn new(events: Arc<EventSink>, access_log: Arc<AccessLog>) -> Self {
        Self { events, access_log }
    }

    /// `logging`: metrics and the event for a request that ended with `status` sent
    /// downstream (0: none).
    pub fn run(&self, session: &Session, ctx: &RequestCtx, status: u16) {
        let format = self.access_log.format();
        if self.events.enabled() || format.is_some() {
            // Read from the session once, for the access line and the event alike.
            let facts = RequestFacts::of(session, ctx);
            if let Some(format) = format {
                let line = access_line(&facts, session, ctx, status);
                self.access_log
                    .offer(line.render(format, chrono::Utc::now()));
            }
            if self.events.enabled() {
                self.events
                    .emit(request_event(facts, ctx, status, self.events.next_id()));
            }
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

/// The access log's view of a finished request.
fn access_line<'a>(
    facts: &'a RequestFacts,
    session: &'a Session,
    ctx: &'a RequestCtx,
    status: u16,
) -> AccessLine<'a> {
    let req = session.req_header();
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let started =
        chrono::Utc::now() - chrono::TimeDelta::from_std(ctx.started.elapsed()).unwrap_or_default();
    AccessLine {
        ts: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        request_id: ctx.request_id_str(),
        client_ip: facts.client_ip.as_deref(),
        method: &facts.method,
        path: &facts.path,
        status,
        bytes_in: facts.bytes_in,
        bytes_out: facts.bytes_out,
        latency_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
        route: ctx.route_name(),
        key_id: ctx.key.as_ref().map(|k| k.id.as_str()),
        upstream: upstream_label(ctx),
        referer: header("referer"),
        user_agent: header("user-agent"),
    }
}

/// The peer that answered, as `group/ip:port`.
fn upstream_label(ctx: &RequestCtx) -> Option<String> {
    match (&ctx.route, &ctx.peer) {
        (Some(route), Some(peer)) => Some(route.upstream.label(peer).to_string()),
        _ => None,
    }
}

/// What the event needs from the session (kept apart so the event is built, and tested,
/// from the context alone).
#[derive(Debug, Clone, Default)]
struct RequestFacts {
    method: String,
    path: String,
    client_ip: Option<String>,
    http_version: &'static str,
    bytes_in: u64,
    bytes_out: u64,
}

impl RequestFacts {
    fn of(session: &Session, ctx: &RequestCtx) -> Self {
        let req = session.req_header();
        Self {
            method: req.method.as_str().to_string(),
            path: req.uri.path().to_string(),
            client_ip: crate::stage::client_ip(session, ctx).map(|ip| ip.to_string()),
            http_version: version_label(req.version),
            bytes_in: u64::try_from(session.body_bytes_read()).unwrap_or(u64::MAX),
            bytes_out: u64::try_from(session.body_bytes_sent()).unwrap_or(u64::MAX),
        }
    }
}

/// `1.0`, `1.1`, `2` (`3` should it come), as the event names the client's protocol.
fn version_label(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// The event for a finished request (`status` as sent downstream, 0 for none).
fn request_event(facts: RequestFacts, ctx: &RequestCtx, status: u16, id: String) -> RequestEvent {
    let elapsed = ctx.started.elapsed();
    let ts = std::time::SystemTime::now()
        .checked_sub(elapsed)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    RequestEvent {
        v: sluice_event::VERSION,
        id,
        ts,
        route: ctx.route_name().to_string(),
        method: facts.method,
        path: facts.path,
        status,
        key_id: ctx.key.as_ref().map(|k| k.id.clone()),
        // The key's tier (also for a key with its own limits, whose policy is named after
        // the key), else the tier an IP-limited route counted the request at.
        tier: ctx
            .key
            .as_ref()
            .map(|k| k.tier.clone())
            .or_else(|| ctx.rate.as_ref().map(|r| r.tier.clone())),
        client_ip: facts.client_ip,
        upstream: upstream_label(ctx),
        latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        upstream_latency_us: ctx
            .upstream_latency
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        breaker: breaker_state(ctx).map(str::to_string),
        bytes_in: facts.bytes_in,
        bytes_out: facts.bytes_out,
        limited: ctx.refusal.as_ref().is_some_and(Refusal::is_rate_limited),
        limiter: ctx.limiter.map(|mode| mode.as_str().to_string()),
        hedged: ctx.hedged,
        request_id: ctx.request_id_str().map(str::to_string),
        http_version: Some(facts.http_version.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyRecord, KeyStatus};
    use crate::limiter::LimiterMode;
    use crate::respond::code;
    use crate::snapshot::Snapshot;
    use std::sync::Arc;

    fn ctx() -> RequestCtx {
        let yaml = "server: { listen: \"127.0.0.1:1\", admin_listen: \"127.0.0.1:2\" }\n\
                    upstreams:\n  g: { peers: [\"127.0.0.1:3\"] }\n\
                    routes:\n  - { name: main, path_prefix: /, upstream: g }\n";
        let config = crate::config::parse(std::path::Path::new("t.yaml"), yaml).expect("config");
        let snapshot = Arc::new(Snapshot::build(config, None, 1).expect("snapshot"));
        let mut ctx = RequestCtx::new(snapshot.clone());
        ctx.route = snapshot.router.find(None, "/x").cloned();
        ctx
    }

    fn facts() -> RequestFacts {
        RequestFacts {
            method: "GET".into(),
            path: "/x".into(),
            client_ip: Some("127.0.0.9".into()),
            http_version: "1.1",
            bytes_in: 3,
            bytes_out: 5,
        }
    }

    #[test]
    fn the_event_carries_the_key_the_peer_and_the_retries() {
        let mut ctx = ctx();
        ctx.key = Some(Arc::new(KeyRecord {
            id: "k1".into(),
            name: "n".into(),
            tier: "pro".into(),
            status: KeyStatus::Active,
            created_at: String::new(),
            limits: None,
        }));
        ctx.limiter = Some(LimiterMode::Local);
        let peer = "127.0.0.1:3".parse().expect("addr");
        ctx.peer = Some(peer);
        ctx.attempts = 3;
        let e = request_event(facts(), &ctx, 200, "id-1".into());
        assert_eq!(
            (
                e.route.as_str(),
                e.status,
                e.key_id.as_deref(),
                e.tier.as_deref()
            ),
            ("main", 200, Some("k1"), Some("pro"))
        );
        assert_eq!(e.upstream.as_deref(), Some("127.0.0.1:3"));
        assert_eq!((e.retries, e.hedged), (2, false));
        assert_eq!(e.limiter.as_deref(), Some("local"));
        assert_eq!(e.breaker.as_deref(), Some("closed"));
        assert_eq!((e.bytes_in, e.bytes_out), (3, 5));
        assert!(!e.limited);

        // A hedge is not a retry.
        ctx.attempts = 2;
        ctx.hedged = true;
        let e = request_event(facts(), &ctx, 200, "id-2".into());
        assert_eq!((e.retries, e.hedged), (0, true));
    }

    #[test]
    fn refusals_mark_the_event_limited_or_open() {
        let mut ctx = ctx();
        ctx.refusal = Some(Refusal::new(429, code::RATE_LIMITED, "slow down"));
        let e = request_event(facts(), &ctx, 429, "a".into());
        assert!(e.limited);
        ctx.refusal = Some(Refusal::new(503, code::CIRCUIT_OPEN, "open"));
        let e = request_event(facts(), &ctx, 503, "b".into());
        assert_eq!((e.limited, e.breaker.as_deref()), (false, Some("open")));
    }
}
