//! Upstream stage: the attempts of one request, for normal proxying and for hedging.
//!
//! - which peer: the next round-robin peer that is healthy and whose breaker admits it,
//!   untried first, a tried one only when no other is left (a stale pooled connection to
//!   a single peer deserves a second chance); 503 JSON when none;
//! - whether to try again: within the upstream's `retries` and the route's retry budget,
//!   only for requests that are safe to resend (idempotent, or nothing reached the peer)
//!   and whose body is still whole in Pingora's retry buffer;
//! - what each attempt did: fed to the peer's breaker and
//!   `sluice_upstream_requests_total` exactly once;
//! - what the client is told when every attempt failed: 502, or 504 on a timeout.

use crate::ctx::RequestCtx;
use crate::metrics::metrics;
use crate::respond::Refusal;
use crate::router::Route;
use crate::upstream::{AttemptOutcome, UpstreamGroup};
use pingora_core::upstreams::peer::{HttpPeer, Peer};
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use std::net::SocketAddr;

/// Why an attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// The request's first attempt.
    First,
    /// Another attempt after a failed one (counted in `sluice_retries_total`).
    Retry,
    /// A second attempt racing a slow first one (counted by the hedge stage).
    Hedge,
}

/// Records that an attempt to `addr` begins: the route's retry budget learns of a new
/// request on its first attempt, retries are counted, and the context tracks the peer.
pub fn begin_attempt(ctx: &mut RequestCtx, route: &Route, addr: SocketAddr, kind: AttemptKind) {
    match kind {
        AttemptKind::First => route
            .retry_budget
            .record_request(tokio::time::Instant::now()),
        AttemptKind::Retry => metrics()
            .retries
            .with_label_values(&[&route.upstream.name])
            .inc(),
        AttemptKind::Hedge => ctx.hedged = true,
    }
    ctx.attempts += 1;
    ctx.attempt_counted = false;
    ctx.upstream_status = None;
    ctx.peer = Some(addr);
    ctx.tried.push(addr);
    ctx.attempt_started = Some(std::time::Instant::now());
    ctx.upstream_latency = None;
}

/// A healthy, admitted peer this request has not tried yet.
pub fn untried_peer(group: &UpstreamGroup, ctx: &RequestCtx) -> Option<SocketAddr> {
    group.select(|peer| !ctx.tried.contains(peer))
}

/// The answer when an upstream attempt failed: 504 for a timeout, 502 otherwise.
pub fn upstream_failure(peer: &SocketAddr, timed_out: bool, cause: &str) -> Refusal {
    if timed_out {
        Refusal::new(
            504,
            "upstream_timeout",
            format!("upstream {peer} did not answer in time"),
        )
    } else {
        Refusal::new(
            502,
            "upstream_error",
            format!("upstream {peer} failed: {cause}"),
        )
    }
}

/// How the request's last attempt ended, from what the logging phase knows: whether
/// Pingora saw an upstream error, the status sent downstream, and whether the upstream's
/// own status counts as a breaker failure. Returns (breaker failure, metric outcome).
pub fn final_outcome(
    upstream_error: bool,
    downstream_status: u16,
    upstream_status_failed: bool,
) -> (bool, AttemptOutcome) {
    let outcome = if upstream_error {
        AttemptOutcome::Error
    } else if downstream_status >= 500 {
        AttemptOutcome::Http5xx
    } else {
        AttemptOutcome::Ok
    };
    (upstream_error || upstream_status_failed, outcome)
}

/// Maps a proxy failure that no stage refused on its own to the answer for the client;
/// `None` when the client is gone and nothing can be sent.
pub fn failure_answer(e: &Error, peer: Option<&SocketAddr>) -> Option<Refusal> {
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let peer = peer.unwrap_or(&unknown);
    Some(match (e.esource(), e.etype()) {
        (_, ErrorType::HTTPStatus(code)) => Refusal::new(*code, "error", e.to_string()),
        (ErrorSource::Upstream, ErrorType::ReadTimedout | ErrorType::WriteTimedout) => {
            upstream_failure(peer, true, "")
        }
        (ErrorSource::Upstream, etype) => upstream_failure(peer, false, etype.as_str()),
        (
            ErrorSource::Downstream,
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed,
        ) => return None,
        (ErrorSource::Downstream, etype) => Refusal::new(
            400,
            "bad_request",
            format!("bad request: {}", etype.as_str()),
        ),
        _ => Refusal::new(500, "internal", "internal error"),
    })
}

/// Keeps `refusal` for `fail_to_proxy` and turns it into the error that ends the phase.
fn fail(ctx: &mut RequestCtx, refusal: Refusal) -> Box<Error> {
    let error = Error::explain(
        ErrorType::HTTPStatus(refusal.status),
        refusal.message.clone(),
    );
    ctx.refusal = Some(refusal);
    error
}

/// The attempts of proxied (not hedged) requests, one method per Pingora phase.
#[derive(Debug, Default)]
pub struct UpstreamStage;

impl UpstreamStage {
    /// `upstream_peer`: the peer for the next attempt, or the 503 when there is none.
    pub fn select(&self, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let Some(route) = ctx.route.clone() else {
            let refusal = Refusal::new(
                500,
                "internal",
                "request reached upstream selection without a route",
            );
            return Err(fail(ctx, refusal));
        };
        let group = &route.upstream;
        let addr = untried_peer(group, ctx).or_else(|| {
            if ctx.tried.is_empty() {
                None
            } else {
                group.select(|_| true)
            }
        });
        let Some(addr) = addr else {
            return Err(fail(ctx, group.refusal_when_none()));
        };
        let kind = if ctx.attempts == 0 {
            AttemptKind::First
        } else {
            AttemptKind::Retry
        };
        begin_attempt(ctx, &route, addr, kind);
        let mut peer = group.peer(addr);
        if let Some(idle) = ctx.websocket_idle {
            // Upgraded, reads wait for the next frame: the route's idle timeout bounds them.
            peer.options.read_timeout = Some(idle);
        }
        Ok(peer)
    }

    /// `fail_to_connect`: counts the attempt and allows a retry within the bounds (any
    /// method: nothing reached the peer).
    pub fn connect_failed(
        &self,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(route) = &ctx.route {
            if let Some(addr) = peer.address().as_inet() {
                route
                    .upstream
                    .attempt_finished(addr, true, AttemptOutcome::ConnectError);
            }
            ctx.attempt_counted = true;
            e.set_retry(route.may_retry(ctx.attempts));
        }
        e
    }

    /// `upstream_response_filter`: notes the status; a status the group retries on, for a
    /// request that may be resent, is counted and turned into an error that asks Pingora
    /// for another attempt (see [`Self::proxy_failed`]).
    pub fn response(
        &self,
        session: &Session,
        response: &ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = response.status.as_u16();
        ctx.upstream_status = Some(status);
        ctx.upstream_latency = ctx.attempt_started.map(|t| t.elapsed());
        let (Some(route), Some(peer)) = (ctx.route.clone(), ctx.peer) else {
            return Ok(());
        };
        let group = &route.upstream;
        if group.config.retry_on_status.contains(&status)
            && resendable(session)
            && route.may_retry(ctx.attempts)
        {
            // This answer is dropped, not sent downstream: count it here.
            group.attempt_finished(
                &peer,
                group.is_failure_status(status),
                AttemptOutcome::Http5xx,
            );
            ctx.attempt_counted = true;
            ctx.retry_on_status = true;
            return Error::e_explain(
                ErrorType::HTTPStatus(status),
                format!("upstream {peer} answered {status}; retrying on another peer"),
            );
        }
        Ok(())
    }

    /// `error_while_proxy`: Pingora's policy (only a request that may be resent, and only
    /// when the failure came from a reused, possibly stale, connection), within the retry
    /// bound and budget.
    pub fn proxy_failed(
        &self,
        peer: &HttpPeer,
        session: &Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("peer: {peer}"));
        if std::mem::take(&mut ctx.retry_on_status) {
            e.set_retry(true);
            return e;
        }
        if !resendable(session) {
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

    /// `fail_to_proxy`: the answer for the client (a stage's refusal, else the failure
    /// mapped to a status), or `None` when the client is gone.
    pub fn answer(&self, e: &Error, ctx: &RequestCtx) -> Option<Refusal> {
        match &ctx.refusal {
            Some(refusal) => Some(refusal.clone()),
            None => failure_answer(e, ctx.peer.as_ref()),
        }
    }

    /// `logging`: counts the last attempt, unless an earlier phase already did.
    pub fn finish(&self, ctx: &RequestCtx, e: Option<&Error>, downstream_status: u16) {
        let (Some(route), Some(peer), false) = (&ctx.route, &ctx.peer, ctx.attempt_counted) else {
            return;
        };
        let group = &route.upstream;
        let upstream_error = matches!(e, Some(e) if *e.esource() == ErrorSource::Upstream);
        let status_failed = ctx
            .upstream_status
            .is_some_and(|s| group.is_failure_status(s));
        let (failed, outcome) = final_outcome(upstream_error, downstream_status, status_failed);
        group.attempt_finished(peer, failed, outcome);
    }
}

/// Whether the request may be sent again: idempotent, and its body (if any) still whole
/// in Pingora's retry buffer.
fn resendable(session: &Session) -> bool {
    session.req_header().method.is_idempotent() && !session.as_ref().retry_buffer_truncated()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_attempt_is_classified_by_error_then_status() {
        assert_eq!(
            final_outcome(true, 502, false),
            (true, AttemptOutcome::Error)
        );
        assert_eq!(
            final_outcome(false, 500, true),
            (true, AttemptOutcome::Http5xx)
        );
        // A 503 the breaker does not count (not in failure_statuses) is still a 5xx.
        assert_eq!(
            final_outcome(false, 503, false),
            (false, AttemptOutcome::Http5xx)
        );
        assert_eq!(
            final_outcome(false, 404, false),
            (false, AttemptOutcome::Ok)
        );
    }

    #[test]
    fn failures_map_to_502_504_400_or_nothing() {
        let peer: SocketAddr = "127.0.0.1:8081".parse().expect("addr");
        let timeout = Error::explain(ErrorType::ReadTimedout, "slow");
        let mut timeout = timeout;
        timeout.as_up();
        let answer = failure_answer(&timeout, Some(&peer)).expect("answer");
        assert_eq!((answer.status, answer.code), (504, "upstream_timeout"));

        let mut refused = Error::explain(ErrorType::ConnectRefused, "no");
        refused.as_up();
        let answer = failure_answer(&refused, Some(&peer)).expect("answer");
        assert_eq!((answer.status, answer.code), (502, "upstream_error"));
        assert!(answer.message.contains("127.0.0.1:8081"));

        let mut gone = Error::explain(ErrorType::ConnectionClosed, "bye");
        gone.as_down();
        assert!(failure_answer(&gone, None).is_none());

        let mut bad = Error::explain(ErrorType::InvalidHTTPHeader, "junk");
        bad.as_down();
        assert_eq!(failure_answer(&bad, None).map(|r| r.status), Some(400));

        let status = Error::explain(ErrorType::HTTPStatus(503), "none");
        assert_eq!(failure_answer(&status, None).map(|r| r.status), Some(503));
    }
}
