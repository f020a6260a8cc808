//! Per-request context: the config snapshot, the route, the attempts and their outcome.

use crate::drain::InFlight;
use crate::keys::SharedKey;
use crate::limiter::{LimiterMode, RateState};
use crate::own_headers::X_REQUEST_ID;
use crate::respond::Refusal;
use crate::router::Route;
use crate::snapshot::Snapshot;
use http::HeaderValue;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// Everything a request carries through the pipeline.
#[derive(Debug)]
pub struct RequestCtx {
    /// The config generation this request is served by, from start to end.
    pub snapshot: Arc<Snapshot>,
    /// When the request arrived.
    pub started: Instant,
    /// The matched route, once the route stage ran.
    pub route: Option<Arc<Route>>,
    /// The caller's key, once the auth stage admitted it.
    pub key: Option<SharedKey>,
    /// The caller's bucket, once the rate-limit stage ran (for the response headers).
    pub rate: Option<RateState>,
    /// Time spent in each stage that waits on something, for `Server-Timing`.
    pub timings: Vec<(&'static str, std::time::Duration)>,
    /// The peer of the current (last) attempt.
    pub peer: Option<SocketAddr>,
    /// Peers already tried, so a retry goes elsewhere.
    pub tried: Vec<SocketAddr>,
    /// Attempts made (1 + retries).
    pub attempts: usize,
    /// Whether the current attempt's outcome is already in the metrics (connect errors
    /// are counted when they happen, the final attempt in the logging phase).
    pub attempt_counted: bool,
    /// Set when sluice itself decided the answer (no peer, upstream failure).
    pub refusal: Option<Refusal>,
    /// The status the upstream answered the last attempt with.
    pub upstream_status: Option<u16>,
    /// The last attempt's status is being retried on another peer.
    pub retry_on_status: bool,
    /// A hedge was sent for this request.
    pub hedged: bool,
    /// A WebSocket upgrade on a route that allows it: the idle timeout once upgraded.
    pub websocket_idle: Option<std::time::Duration>,
    /// How the rate limiter decided, when it ran.
    pub limiter: Option<LimiterMode>,
    /// When the current attempt was handed to Pingora to send upstream.
    pub attempt_started: Option<Instant>,
    /// The current attempt's time to its response header.
    pub upstream_latency: Option<std::time::Duration>,
    /// The client's address: the socket's peer, or with a trusted proxy in front the
    /// first address in `X-Forwarded-For` that is not one of them.
    pub client_ip: Option<IpAddr>,
    /// Whether the socket's peer is a trusted proxy (its `X-Forwarded-*` are kept).
    pub via_trusted_proxy: bool,
    /// The request id: the client's valid `X-Request-Id`, or one made here. Kept as the
    /// header value it is sent as (upstream and on the response), so each use is a
    /// reference count, not a copy.
    pub request_id: Option<HeaderValue>,
    /// A `traceparent` started here, when the request brought no valid one.
    pub traceparent: Option<HeaderValue>,
    /// The `Access-Control-Allow-Origin` for the response, when the route's CORS policy
    /// admitted the request's `Origin`.
    pub cors_origin: Option<String>,
    /// The compress stage chose a coding for the response.
    pub compressing: bool,
    /// Counts this request as in flight until the context is dropped.
    _in_flight: InFlight,
}

impl RequestCtx {
    /// A fresh context on `snapshot`.
    pub fn new(snapshot: Arc<Snapshot>) -> Self {
        Self {
            snapshot,
            started: Instant::now(),
            route: None,
            key: None,
            rate: None,
            timings: Vec::new(),
            peer: None,
            tried: Vec::new(),
            attempts: 0,
            attempt_counted: false,
            refusal: None,
            upstream_status: None,
            retry_on_status: false,
            hedged: false,
            websocket_idle: None,
            limiter: None,
            attempt_started: None,
            upstream_latency: None,
            client_ip: None,
            via_trusted_proxy: false,
            request_id: None,
            traceparent: None,
            cors_origin: None,
            compressing: false,
            _in_flight: InFlight::enter(),
        }
    }

    /// A refusal with the headers every answer carries: the request id, and the
    /// `Server-Timing` of the stages that ran.
    pub fn decorate(&self, refusal: Refusal) -> Refusal {
        let refusal = match self.server_timing() {
            Some(timing) => refusal.with_header("server-timing", timing),
            None => refusal,
        };
        match self.request_id_str() {
            Some(id) => refusal.with_header(X_REQUEST_ID.as_str(), id.to_string()),
            None => refusal,
        }
    }

    /// The request id as text (it is only ever made of the token characters the client
    /// stage admits).
    pub fn request_id_str(&self) -> Option<&str> {
        self.request_id.as_ref().and_then(|id| id.to_str().ok())
    }

    /// The `Server-Timing` header value (`auth;dur=0.120, ratelimit;dur=0.850`, ms), or
    /// `None` when no stage was timed.
    pub fn server_timing(&self) -> Option<String> {
        if self.timings.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .timings
            .iter()
            .map(|(name, d)| format!("{name};dur={:.3}", d.as_secs_f64() * 1000.0))
            .collect();
        Some(parts.join(", "))
    }

    /// The route's name for metrics, or `none`.
    pub fn route_name(&self) -> &str {
        self.route
            .as_ref()
            .map_or("none", |r| r.config.name.as_str())
    }
}
