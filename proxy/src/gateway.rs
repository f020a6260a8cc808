//! The Pingora `ProxyHttp` implementation: the pipeline of DESIGN.md §3. Each phase calls
//! its stages in order and nothing else; what a stage does lives in `stage/`.

use crate::ctx::RequestCtx;
use crate::services::Services;
use crate::snapshot::SharedSnapshot;
use crate::stage::auth::AuthStage;
use crate::stage::body_limit::BodyLimitStage;
use crate::stage::client::ClientStage;
use crate::stage::compress::CompressStage;
use crate::stage::cors::CorsStage;
use crate::stage::forward::{Connection, ForwardStage};
use crate::stage::headers::HeadersStage;
use crate::stage::hedge::HedgeStage;
use crate::stage::https::HttpsStage;
use crate::stage::ip_rules::IpRulesStage;
use crate::stage::limits::LimitsStage;
use crate::stage::log::LogStage;
use crate::stage::ratelimit::RateLimitStage;
use crate::stage::route::RouteStage;
use crate::stage::run_stages;
use crate::stage::upstream::UpstreamStage;
use crate::stage::websocket::WebSocketStage;
use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

/// The gateway: the config snapshot and the stages, in pipeline order.
pub struct Gateway {
    snapshot: SharedSnapshot,
    client: ClientStage,
    limits: LimitsStage,
    route: RouteStage,
    https: HttpsStage,
    websocket: WebSocketStage,
    ip_rules: IpRulesStage,
    body_limit: BodyLimitStage,
    cors: CorsStage,
    compress: CompressStage,
    auth: AuthStage,
    ratelimit: RateLimitStage,
    hedge: HedgeStage,
    forward: ForwardStage,
    upstream: UpstreamStage,
    headers: HeadersStage,
    log: LogStage,
}

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The hedge stage's HTTP client could not be built.
    #[error("hedging client: {0}")]
    HedgeClient(#[from] reqwest::Error),
}

impl Gateway {
    /// A gateway serving whatever config `snapshot` holds, its stages over `services`.
    pub fn new(snapshot: SharedSnapshot, services: &Services) -> Result<Self, GatewayError> {
        Ok(Self {
            snapshot,
            client: ClientStage::new(services.ids.clone()),
            limits: LimitsStage,
            route: RouteStage,
            https: HttpsStage,
            websocket: WebSocketStage,
            ip_rules: IpRulesStage,
            body_limit: BodyLimitStage,
            cors: CorsStage,
            compress: CompressStage,
            auth: AuthStage::new(services.key_cache.clone(), services.key_store.clone()),
            ratelimit: RateLimitStage::new(services.redis.clone()),
            hedge: HedgeStage::new(HeadersStage, ForwardStage)?,
            forward: ForwardStage,
            upstream: UpstreamStage,
            headers: HeadersStage,
            log: LogStage::new(services.events.clone(), services.access_log.clone()),
        })
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.snapshot.load_full())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        Ok(run_stages!(
            session,
            ctx,
            self.client,
            self.limits,
            self.route,
            self.https,
            self.websocket,
            self.ip_rules,
            self.body_limit,
            self.cors,
            self.compress,
            self.auth,
            self.ratelimit,
            self.hedge,
        ))
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        self.upstream.select(ctx)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.body_limit.chunk(session, ctx)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.route.rewrite(upstream_request, ctx)?;
        self.forward
            .upstream_request(Connection::of(session), upstream_request, ctx)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        e: Box<Error>,
    ) -> Box<Error> {
        self.upstream.connect_failed(peer, ctx, e)
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.upstream.response(session, upstream_response, ctx)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        self.upstream
            .proxy_failed(peer, session, e, ctx, client_reused)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.compress.response(session, upstream_response, ctx);
        self.https.response(session, upstream_response, ctx)?;
        self.headers.response(upstream_response, ctx)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let Some(refusal) = self.upstream.answer(e, ctx) else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        let refusal = ctx.decorate(refusal);
        if let Err(write_error) = refusal.write(session).await {
            tracing::debug!(error = %write_error, "could not send the error response downstream");
        }
        FailToProxy {
            error_code: refusal.status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        // A refusal's own status: a gRPC refusal is written as HTTP 200 with its status in
        // `grpc-status`, and the event and metrics should say what happened.
        let status = ctx.refusal.as_ref().map_or_else(
            || session.response_written().map_or(0, |r| r.status.as_u16()),
            |r| r.status,
        );
        self.upstream.finish(ctx, e, status);
        self.log.run(session, ctx, status);
    }
}
