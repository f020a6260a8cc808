//! The request pipeline's stages, one module each, called in order from `gateway.rs`.
//!
//! A request stage has one shape ([`RequestStage::run`]): it looks at the session and the
//! context and says what happens next ([`Step`]). The `request_filter` phase runs its
//! stages in order and stops at the first that does not say `Continue`. Stages built for
//! the other phases (upstream attempts, headers, log) keep the same rule: the phase calls
//! them in order and has no logic of its own.
//!
//! A stage owns the process-wide state it needs (caches, clients) and reads its per-route
//! settings from the route in the context, which the config snapshot built, so a reload
//! changes what a stage does without rebuilding it.

pub mod auth;
pub mod body_limit;
pub mod client;
pub mod compress;
pub mod cors;
pub mod forward;
pub mod headers;
pub mod hedge;
pub mod https;
pub mod ip_rules;
pub mod limits;
pub mod log;
pub mod ratelimit;
pub mod route;
pub mod upstream;
pub mod websocket;

use crate::ctx::RequestCtx;
use crate::respond::Refusal;
use pingora_core::Result;
use pingora_proxy::Session;
use std::future::Future;

/// What a request stage decided.
#[derive(Debug)]
pub enum Step {
    /// Go on to the next stage (and, after the last, to the upstream).
    Continue,
    /// Answer the client with this refusal and end the request.
    Respond(Refusal),
    /// The stage wrote the whole response itself (a hedged request); end the request.
    Answered,
}

/// A stage of the `request_filter` phase.
pub trait RequestStage: Send + Sync {
    /// Looks at the request and decides. `Err` is a real failure (the client went away,
    /// a write failed), not a planned denial: that is `Ok(Step::Respond(..))`.
    fn run(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> impl Future<Output = Result<Step>> + Send;
}

/// The socket peer's address (a proxy's, when one is in front).
pub fn peer_ip(session: &Session) -> Option<std::net::IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The client's address as the client stage found it (trusted proxies looked through),
/// or the socket peer's when the stage did not run.
pub fn client_ip(session: &Session, ctx: &RequestCtx) -> Option<std::net::IpAddr> {
    ctx.client_ip.or_else(|| peer_ip(session))
}

/// Writes `refusal` (with the `Server-Timing` of the stages that ran) and keeps it in the
/// context for the log stage.
pub async fn refuse(session: &mut Session, ctx: &mut RequestCtx, refusal: Refusal) -> Result<()> {
    let refusal = ctx.decorate(refusal);
    let written = refusal.write(session).await;
    ctx.refusal = Some(refusal);
    written
}

/// Runs request stages in order: `Ok(true)` when one of them answered the request (the
/// phase is over), `Ok(false)` when every one said `Continue`.
macro_rules! run_stages {
    ($session:expr, $ctx:expr, $($stage:expr),+ $(,)?) => {{
        use $crate::stage::RequestStage as _;
        'pipeline: {
            $(
                match $stage.run($session, $ctx).await? {
                    $crate::stage::Step::Continue => {}
                    $crate::stage::Step::Respond(refusal) => {
                        $crate::stage::refuse($session, $ctx, refusal).await?;
                        break 'pipeline true;
                    }
                    $crate::stage::Step::Answered => break 'pipeline true,
                }
            )+
            false
        }
    }};
}
pub(crate) use run_stages;
