//! Hedge stage: for an eligible request (GET/HEAD, or one carrying `Idempotency-Key`,
//! body within `max_body_bytes`) sluice proxies the request itself: the first attempt
//! goes out at once; if it has not answered after the hedge delay (fixed, or the
//! upstream's recent p95 with a floor), a second attempt goes to another peer whose
//! breaker admits it. The first good answer is streamed downstream; the other attempt is
//! dropped, which closes its connection, so the upstream sees its client go away.
//! Hedges are capped by the route's budget (`max_extra_percent`); a POST without
//! `Idempotency-Key` is never hedged.

use crate::config::{HedgeConfig, HedgeDelay};
use crate::ctx::RequestCtx;
use crate::metrics::metrics;
use crate::respond::Refusal;
use crate::router::{strip_prefix, Route};
use crate::stage::compress::CompressStage;
use crate::stage::forward::{Connection, ForwardStage};
use crate::stage::headers::HeadersStage;
use crate::stage::upstream::{begin_attempt, untried_peer, upstream_failure, AttemptKind};
use crate::stage::{RequestStage, Step};
use crate::upstream::{AttemptOutcome, UpstreamGroup};
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, Method};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Headers that describe one connection, not the message: never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
];

/// Whether `req` may be sent twice on a route with `cfg`.
pub fn eligible(req: &RequestHeader, cfg: &HedgeConfig) -> bool {
    let safe = matches!(req.method, Method::GET | Method::HEAD)
        || req.headers.contains_key("idempotency-key");
    // An upgrade is a connection, not a request that can be sent twice.
    let upgrade = req.headers.contains_key(http::header::UPGRADE);
    if !safe || upgrade || req.headers.contains_key(TRANSFER_ENCODING) {
        return false;
    }
    match req.headers.get(CONTENT_LENGTH) {
        None => true,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|len| len <= cfg.max_body_bytes),
    }
}

/// The delay before the hedge: fixed, or the route's p95 with the floor.
pub fn delay(cfg: &HedgeConfig, route: &Route) -> Duration {
    match cfg.delay {
        HedgeDelay::Fixed(d) => d,
        HedgeDelay::P95 => route
            .latency
            .p95()
            .map_or(cfg.min_delay, |p| p.max(cfg.min_delay)),
    }
}

/// One attempt's request, built once and sent to any peer.
struct Outgoing {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    timeout: Duration,
}

type Attempt = (
    SocketAddr,
    Duration,
    Result<reqwest::Response, reqwest::Error>,
);

/// The hedge stage, with its own HTTP client (and connection pool per peer).
pub struct HedgeStage {
    client: reqwest::Client,
    headers: HeadersStage,
    forward: ForwardStage,
}

impl RequestStage for HedgeStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora_core::Result<Step> {
        let Some(route) = ctx.route.clone() else {
            return Ok(Step::Continue);
        };
        let Some(cfg) = &route.config.hedge else {
            return Ok(Step::Continue);
        };
        if !eligible(session.req_header(), cfg) {
            return Ok(Step::Continue);
        }
        Ok(match self.serve(session, ctx, &route, cfg).await? {
            Ok(()) => Step::Answered,
            Err(refusal) => Step::Respond(refusal),
        })
    }
}

impl HedgeStage {
    /// A stage with a keep-alive pool per peer; its requests get `forward`'s edits and
    /// its answers `headers`' decoration.
    pub fn new(headers: HeadersStage, forward: ForwardStage) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(128)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            client,
            headers,
            forward,
        })
    }

    async fn attempt(&self, peer: SocketAddr, out: &Outgoing) -> Attempt {
        let started = Instant::now();
        let url = format!("http://{peer}{}", out.path);
        let result = self
            .client
            .request(out.method.clone(), url)
            .headers(out.headers.clone())
            .body(out.body.clone())
            .timeout(out.timeout)
            .send()
            .await;
        (peer, started.elapsed(), result)
    }

    /// Serves the request by (possibly) hedged attempts and writes the answer. `Err`
    /// carries the refusal to send when no attempt could answer.
    async fn serve(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Arc<Route>,
        cfg: &HedgeConfig,
    ) -> pingora_core::Result<Result<(), Refusal>> {
        let group = &route.upstream;
        let mut out = outgoing(session, route).await?;
        self.forward
            .hedged_request(Connection::of(session), &mut out.headers, ctx);
        let Some(first_peer) = untried_peer(group, ctx) else {
            return Ok(Err(group.refusal_when_none()));
        };
        begin_attempt(ctx, route, first_peer, AttemptKind::First);
        route
            .hedge_budget
            .record_request(tokio::time::Instant::now());

        let first = self.attempt(first_peer, &out);
        tokio::pin!(first);
        let wait = delay(cfg, route);
        let early = tokio::select! {
            done = &mut first => Some(done),
            () = tokio::time::sleep(wait) => None,
        };
        let winner = match early {
            Some(done) if is_good(group, &done) => done,
            Some(done) => {
                // The first attempt failed before the hedge delay: a plain retry.
                count_failed(group, &done);
                if !route.may_retry(ctx.attempts) {
                    done
                } else {
                    match untried_peer(group, ctx) {
                        Some(peer) => {
                            begin_attempt(ctx, route, peer, AttemptKind::Retry);
                            self.attempt(peer, &out).await
                        }
                        None => done,
                    }
                }
            }
            None => {
                let hedges = &metrics().hedges;
                match untried_peer(group, ctx) {
                    Some(peer) if route.hedge_budget.try_take(tokio::time::Instant::now()) => {
                        hedges.with_label_values(&[&group.name, "sent"]).inc();
                        begin_attempt(ctx, route, peer, AttemptKind::Hedge);
                        let second = self.attempt(peer, &out);
                        tokio::pin!(second);
                        let winner = race(group, &mut first, &mut second).await;
                        let result = if winner.0 == peer { "won" } else { "lost" };
                        hedges.with_label_values(&[&group.name, result]).inc();
                        winner
                    }
                    Some(_) => {
                        // The peer's half-open probe slot (if any) was taken but unused.
                        hedges
                            .with_label_values(&[&group.name, "skipped_budget"])
                            .inc();
                        first.await
                    }
                    None => first.await,
                }
            }
        };
        self.write_answer(session, ctx, route, winner).await
    }
}

fn is_good(group: &UpstreamGroup, attempt: &Attempt) -> bool {
    matches!(&attempt.2, Ok(r) if !group.is_failure_status(r.status().as_u16()))
}

/// Counts a failed attempt that will not be the answer.
fn count_failed(group: &UpstreamGroup, attempt: &Attempt) {
    let outcome = if attempt.2.is_ok() {
        AttemptOutcome::Http5xx
    } else {
        AttemptOutcome::Error
    };
    group.attempt_finished(&attempt.0, true, outcome);
}

/// The first good answer of two attempts; if both fail, the second to finish.
async fn race(
    group: &UpstreamGroup,
    first: &mut (impl std::future::Future<Output = Attempt> + Unpin),
    second: &mut (impl std::future::Future<Output = Attempt> + Unpin),
) -> Attempt {
    tokio::select! {
        a = &mut *first => {
            if is_good(group, &a) { return a; }
            count_failed(group, &a);
            second.await
        }
        b = &mut *second => {
            if is_good(group, &b) { return b; }
            count_failed(group, &b);
            first.await
        }
    }
}

async fn outgoing(session: &mut Session, route: &Route) -> pingora_core::Result<Outgoing> {
    let req = session.req_header();
    let path_and_query = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let path = if route.config.strip_prefix {
        strip_prefix(path_and_query, &route.config.path_prefix).into_owned()
    } else {
        path_and_query.to_string()
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for (name, value) in req.headers.iter() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    let method = req.method.clone();
    let mut body = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(Outgoing {
        method,
        path,
        headers,
        body: body.freeze(),
        timeout: route.upstream.config.read_timeout,
    })
}

impl HedgeStage {
    /// Streams the winning attempt downstream, or returns the refusal when it failed.
    async fn write_answer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
        (peer, elapsed, result): Attempt,
    ) -> pingora_core::Result<Result<(), Refusal>> {
        let group = &route.upstream;
        ctx.peer = Some(peer);
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                group.attempt_finished(&peer, true, AttemptOutcome::Error);
                ctx.attempt_counted = true;
                return Ok(Err(upstream_failure(
                    &peer,
                    e.is_timeout(),
                    "connection error",
                )));
            }
        };
        route.latency.record(elapsed);
        let status = response.status().as_u16();
        ctx.upstream_status = Some(status);
        let mut header = ResponseHeader::build(status, Some(response.headers().len() + 4))?;
        for (name, value) in response.headers() {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                header.append_header(name.clone(), value.clone())?;
            }
        }
        if !response.headers().contains_key(CONTENT_LENGTH)
            && session.req_header().method != Method::HEAD
        {
            header.insert_header(HeaderName::from_static("transfer-encoding"), "chunked")?;
        }
        CompressStage.response(session, &header, ctx);
        self.headers.response(&mut header, ctx)?;
        session
            .write_response_header(Box::new(header), false)
            .await?;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => session.write_response_body(Some(chunk), false).await?,
                Ok(None) => break,
                Err(e) => {
                    // Headers are out; all that is left is to cut the response short.
                    return Err(pingora_core::Error::because(
                        pingora_core::ErrorType::ReadError,
                        "reading the hedged upstream response",
                        e,
                    ));
                }
            }
        }
        session.write_response_body(None, true).await?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    fn cfg(delay: HedgeDelay) -> HedgeConfig {
        HedgeConfig {
            delay,
            min_delay: Duration::from_millis(2),
            max_extra_percent: 10.0,
            max_body_bytes: 100,
        }
    }

    fn request(method: &str, headers: &[(&'static str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build(method, b"/x", None).expect("request");
        for (name, value) in headers {
            req.insert_header(*name, *value).expect("header");
        }
        req
    }

    #[test]
    fn only_requests_safe_to_send_twice_are_eligible() {
        let c = cfg(HedgeDelay::P95);
        assert!(eligible(&request("GET", &[]), &c));
        assert!(eligible(&request("HEAD", &[]), &c));
        assert!(!eligible(&request("POST", &[]), &c));
        assert!(eligible(
            &request(
                "POST",
                &[("idempotency-key", "k"), ("content-length", "100")]
            ),
            &c
        ));
        assert!(!eligible(
            &request(
                "PUT",
                &[("idempotency-key", "k"), ("content-length", "101")]
            ),
            &c
        ));
        assert!(!eligible(&request("GET", &[("content-length", "abc")]), &c));
        assert!(!eligible(
            &request("GET", &[("transfer-encoding", "chunked")]),
            &c
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_delay_is_fixed_or_the_routes_p95_with_its_floor() {
        let yaml = "server: { listen: \"127.0.0.1:1\", admin_listen: \"127.0.0.1:2\" }\n\
                    upstreams:\n  g: { peers: [\"127.0.0.1:3\", \"127.0.0.1:4\"] }\n\
                    routes:\n  - { name: h, path_prefix: /, upstream: g, hedge: { delay: p95 } }\n";
        let config = crate::config::parse(std::path::Path::new("t.yaml"), yaml).expect("config");
        let snapshot = Snapshot::build(config, None, 1).expect("snapshot");
        let route = snapshot.router.find(None, "/").expect("route");
        let fixed = cfg(HedgeDelay::Fixed(Duration::from_millis(7)));
        assert_eq!(delay(&fixed, route), Duration::from_millis(7));
        let p95 = cfg(HedgeDelay::P95);
        assert_eq!(
            delay(&p95, route),
            Duration::from_millis(2),
            "no data: the floor"
        );
        for _ in 0..100 {
            route.latency.record(Duration::from_millis(20));
        }
        tokio::time::advance(Duration::from_millis(25)).await;
        let d = delay(&p95, route);
        assert!(
            d >= Duration::from_millis(17) && d <= Duration::from_millis(23),
            "p95 of 20 ms answers: {d:?}"
        );
        // Once fewer than 5% of answers are slow, the p95 is a fast one: the floor.
        for _ in 0..3000 {
            route.latency.record(Duration::from_micros(100));
        }
        tokio::time::advance(Duration::from_millis(25)).await;
        assert_eq!(
            delay(&p95, route),
            Duration::from_millis(2),
            "fast answers: the floor"
        );
    }
}
