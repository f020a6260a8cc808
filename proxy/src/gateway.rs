//! The Pingora `ProxyHttp` implementation. Each phase calls its stages in order and
//! nothing else; the stages live in `stage/` and `upstream/`.

use crate::config::{AuthMode, RateLimitMode};
use crate::ctx::{Refusal, RequestCtx};
use crate::metrics::metrics;
use crate::respond::{json_error, json_error_with};
use crate::services::Services;
use crate::snapshot::SharedSnapshot;
use crate::stage::ratelimit::RateOutcome;
use crate::stage::{hedge, route};
use async_trait::async_trait;
use pingora_core::upstreams::peer::{HttpPeer, Peer};
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;

/// Response header naming the peer that answered.
const UPSTREAM_HEADER: &str = "x-sluice-upstream";

/// Default wait for Redis when the config has no `redis:` section (then nothing asks).
const NO_REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(20);

/// The gateway: routes, authenticates, rate-limits, balances and retries.
pub struct Gateway {
    snapshot: SharedSnapshot,
    services: Arc<Services>,
}

impl Gateway {
    /// A gateway serving whatever config `snapshot` holds.
    pub fn new(snapshot: SharedSnapshot, services: Arc<Services>) -> Self {
        Self { snapshot, services }
    }

    /// Auth stage: admits the request's key into `ctx.key`, or says why not.
    async fn authenticate(&self, session: &Session, ctx: &mut RequestCtx) -> Result<(), Refusal> {
        let Some(route) = &ctx.route else {
            return Ok(());
        };
        if route.config.auth != AuthMode::ApiKey {
            return Ok(());
        }
        let timeout = redis_timeout(ctx);
        let started = std::time::Instant::now();
        let checked = self
            .services
            .auth
            .check(&session.req_header().headers, timeout)
            .await;
        ctx.timings.push(("auth", started.elapsed()));
        ctx.key = Some(checked?);
        Ok(())
    }

    /// Rate-limit stage: takes a token into `ctx.rate`, or says why not.
    async fn limit(&self, session: &Session, ctx: &mut RequestCtx) -> Result<(), Refusal> {
        let Some(route) = ctx.route.clone() else {
            return Ok(());
        };
        let (subject, tier_name) = match &route.config.ratelimit {
            RateLimitMode::Off => return Ok(()),
            RateLimitMode::Key => match &ctx.key {
                Some(key) => (key.id.clone(), key.tier.clone()),
                None => return Ok(()),
            },
            RateLimitMode::Ip { tier } => {
                let ip = session
                    .client_addr()
                    .and_then(|a| a.as_inet())
                    .map_or_else(|| "unknown".to_string(), |a| a.ip().to_string());
                (format!("ip:{ip}"), tier.clone())
            }
        };
        let snapshot = ctx.snapshot.clone();
        let Some(tier) = snapshot.config.tiers.get(&tier_name) else {
            return Err(Refusal::new(
                403,
                "unknown_tier",
                format!("the key's tier \"{tier_name}\" is not configured"),
            ));
        };
        let timeout = redis_timeout(ctx);
        let cfg = &snapshot.config.ratelimit;
        let started = std::time::Instant::now();
        let (outcome, mode) = self
            .services
            .limiter
            .check(&subject, &tier_name, tier, cfg, timeout)
            .await;
        ctx.limiter = Some(mode);
        ctx.timings.push(("ratelimit", started.elapsed()));
        match outcome {
            RateOutcome::Allowed(state) => {
                ctx.rate = Some(state);
                Ok(())
            }
            RateOutcome::Limited(state, retry_after) => {
                let mut refusal = Refusal::new(
                    429,
                    "rate_limited",
                    format!("rate limit of tier {tier_name} exceeded; retry in {retry_after} s"),
                );
                refusal.headers = vec![
                    ("retry-after", retry_after.to_string()),
                    ("ratelimit-policy", state.policy_header()),
                    ("ratelimit", state.limit_header()),
                ];
                Err(refusal)
            }
            RateOutcome::Unavailable => Err(Refusal::new(
                503,
                "ratelimit_unavailable",
                "the rate limiter is unavailable; try again shortly",
            )),
        }
    }
}

/// Adds sluice's response headers: `Server-Timing`, the rate-limit headers and
/// `X-Sluice-Upstream`. Used for proxied and hedged answers alike.
pub(crate) fn decorate(ctx: &RequestCtx, response: &mut ResponseHeader) -> Result<()> {
    if let Some(timing) = ctx.server_timing() {
        response.append_header("server-timing", timing)?;
    }
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

impl Gateway {
    /// Hedge stage: eligible requests on a hedged route are proxied here and end the
    /// phase (`true`); everything else goes on to Pingora's proxying (`false`).
    async fn hedge(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let Some(route) = ctx.route.clone() else {
            return Ok(false);
        };
        let Some(cfg) = &route.config.hedge else {
            return Ok(false);
        };
        if !hedge::eligible(session.req_header(), cfg) {
            return Ok(false);
        }
        match self
            .services
            .hedger
            .serve(session, ctx, &route, cfg)
            .await?
        {
            Ok(()) => Ok(true),
            Err(refusal) => send_refusal(session, ctx, refusal).await,
        }
    }
}

fn redis_timeout(ctx: &RequestCtx) -> std::time::Duration {
    ctx.snapshot
        .config
        .redis
        .as_ref()
        .map_or(NO_REDIS_TIMEOUT, |r| r.timeout)
}

/// Writes a stage's refusal and ends the request.
async fn send_refusal(
    session: &mut Session,
    ctx: &mut RequestCtx,
    mut refusal: Refusal,
) -> Result<bool> {
    if let Some(timing) = ctx.server_timing() {
        refusal.headers.push(("server-timing", timing));
    }
    json_error_with(
        session,
        refusal.status,
        refusal.code,
        &refusal.message,
        &refusal.headers,
    )
    .await?;
    ctx.refusal = Some(refusal);
    Ok(true)
}

fn refuse(ctx: &mut RequestCtx, refusal: Refusal) -> Box<Error> {
    let error = Error::explain(
        ErrorType::HTTPStatus(refusal.status),
        refusal.message.clone(),
    );
    ctx.refusal = Some(refusal);
    error
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.snapshot.load_full())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let req = session.req_header();
        let host = req
            .uri
            .host()
            .or_else(|| req.headers.get(http::header::HOST)?.to_str().ok());
        match ctx.snapshot.router.find(host, req.uri.path()) {
            Some(found) => ctx.route = Some(found.clone()),
            None => {
                let message = format!("no route matches {} {}", req.method, req.uri.path());
                json_error(session, 404, "no_route", &message).await?;
                return Ok(true);
            }
        }
        if let Err(refusal) = self.authenticate(session, ctx).await {
            return send_refusal(session, ctx, refusal).await;
        }
        if let Err(refusal) = self.limit(session, ctx).await {
            return send_refusal(session, ctx, refusal).await;
        }
        self.hedge(session, ctx).await
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(route) = ctx.route.clone() else {
            return Err(refuse(
                ctx,
                Refusal::new(
                    500,
                    "internal",
                    "request reached upstream selection without a route",
                ),
            ));
        };
        let group = &route.upstream;
        if ctx.attempts == 0 {
            route
                .retry_budget
                .record_request(tokio::time::Instant::now());
        }
        // Prefer a peer not tried yet; fall back to a tried one (a stale pooled
        // connection to a single peer deserves a second chance).
        let addr = group.select(|peer| !ctx.tried.contains(peer)).or_else(|| {
            if ctx.tried.is_empty() {
                None
            } else {
                group.select(|_| true)
            }
        });
        let Some(addr) = addr else {
            let refusal = group.refusal_when_none();
            return Err(refuse(ctx, refusal));
        };
        if ctx.attempts > 0 {
            metrics().retries.with_label_values(&[&group.name]).inc();
        }
        ctx.attempts += 1;
        ctx.attempt_counted = false;
        ctx.upstream_status = None;
        ctx.peer = Some(addr);
        ctx.tried.push(addr);
        ctx.attempt_started = Some(std::time::Instant::now());
        ctx.upstream_latency = None;
        Ok(group.peer(addr))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(route) = &ctx.route else {
            return Ok(());
        };
        if route.config.strip_prefix {
            let original = upstream_request
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str());
            let stripped = route::strip_prefix(original, &route.config.path_prefix);
            let uri = stripped.parse::<http::Uri>().map_err(|e| {
                Error::because(
                    ErrorType::InvalidHTTPHeader,
                    "stripping the route prefix",
                    e,
                )
            })?;
            upstream_request.set_uri(uri);
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(route) = &ctx.route {
            let group = &route.upstream;
            if let Some(addr) = peer.address().as_inet() {
                group.attempt_finished(addr, true, "connect_error");
            }
            ctx.attempt_counted = true;
            // Nothing reached the peer, so any method is safe to send elsewhere.
            e.set_retry(route.may_retry(ctx.attempts));
        }
        e
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        ctx.upstream_status = Some(status);
        ctx.upstream_latency = ctx.attempt_started.map(|t| t.elapsed());
        let (Some(route), Some(peer)) = (ctx.route.clone(), ctx.peer) else {
            return Ok(());
        };
        let group = &route.upstream;
        if group.config.retry_on_status.contains(&status)
            && session.req_header().method.is_idempotent()
            && route.may_retry(ctx.attempts)
        {
            // This answer is dropped, not sent downstream: count it here, then ask
            // Pingora for another attempt (see error_while_proxy).
            group.attempt_finished(&peer, group.is_failure_status(status), "http_5xx");
            ctx.attempt_counted = true;
            ctx.retry_on_status = true;
            return Error::e_explain(
                ErrorType::HTTPStatus(status),
                format!("upstream {peer} answered {status}; retrying on another peer"),
            );
        }
        Ok(())
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("peer: {peer}"));
        if std::mem::take(&mut ctx.retry_on_status) {
            e.set_retry(true);
            return e;
        }
        // Pingora's policy: only idempotent requests, and only when the failure came from
        // a reused (possibly stale) connection. On top of it, the retry bound and budget.
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
            if e.retry()
                && !ctx
                    .route
                    .as_ref()
                    .is_some_and(|r| r.may_retry(ctx.attempts))
            {
                e.set_retry(false);
            }
        }
        e
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        decorate(ctx, upstream_response)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let refusal = ctx.refusal.clone().unwrap_or_else(|| classify(e, ctx));
        if refusal.status == 0 {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let written = json_error_with(
            session,
            refusal.status,
            refusal.code,
            &refusal.message,
            &refusal.headers,
        )
        .await;
        if let Err(write_error) = written {
            tracing::debug!(error = %write_error, "could not send the error response downstream");
        }
        FailToProxy {
            error_code: refusal.status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let events = &self.services.events;
        if events.enabled() {
            events.emit(crate::kafka::request_event(
                session,
                ctx,
                status,
                events.next_id(),
            ));
        }
        let m = metrics();
        let route = ctx.route_name();
        m.requests
            .with_label_values(&[route, crate::metrics::status_label(status)])
            .inc();
        m.request_duration
            .with_label_values(&[route])
            .observe(ctx.started.elapsed().as_secs_f64());
        if let (Some(route), Some(peer), false) = (&ctx.route, &ctx.peer, ctx.attempt_counted) {
            let group = &route.upstream;
            let upstream_failed = matches!(e, Some(e) if *e.esource() == ErrorSource::Upstream);
            let failed = upstream_failed
                || ctx
                    .upstream_status
                    .is_some_and(|s| group.is_failure_status(s));
            let outcome = if upstream_failed {
                "error"
            } else if status >= 500 {
                "http_5xx"
            } else {
                "ok"
            };
            group.attempt_finished(peer, failed, outcome);
        }
    }
}

/// Maps a proxy failure that no stage refused on its own to a status and a code.
fn classify(e: &Error, ctx: &RequestCtx) -> Refusal {
    let peer = ctx.peer.map(|p| p.to_string()).unwrap_or_default();
    match (e.esource(), e.etype()) {
        (_, ErrorType::HTTPStatus(code)) => Refusal::new(*code, "error", e.to_string()),
        (ErrorSource::Upstream, ErrorType::ReadTimedout | ErrorType::WriteTimedout) => {
            Refusal::new(
                504,
                "upstream_timeout",
                format!("upstream {peer} did not answer in time"),
            )
        }
        (ErrorSource::Upstream, _) => Refusal::new(
            502,
            "upstream_error",
            format!("upstream {peer} failed: {}", e.etype().as_str()),
        ),
        (
            ErrorSource::Downstream,
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed,
        ) => Refusal::new(0, "client_gone", ""),
        (ErrorSource::Downstream, _) => Refusal::new(
            400,
            "bad_request",
            format!("bad request: {}", e.etype().as_str()),
        ),
        _ => Refusal::new(500, "internal", "internal error"),
    }
}
