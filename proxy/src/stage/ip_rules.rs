//! IP rules stage, after the route: a route's `deny` and `allow` CIDR lists decide which
//! client addresses it serves; any other gets 403 `ip_denied` before auth, limits or the
//! upstream spend anything on it. The stack uses it to keep `/purge-payments` to
//! loopback and the demo upstreams' control API away from the proxy port.

use crate::ctx::RequestCtx;
use crate::metrics::metrics;
use crate::respond::Refusal;
use crate::stage::{client_ip, RequestStage, Step};
use pingora_core::Result;
use pingora_proxy::Session;

/// Applies the matched route's IP rules.
#[derive(Debug, Default)]
pub struct IpRulesStage;

impl RequestStage for IpRulesStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Step> {
        let Some(route) = ctx.route.as_ref() else {
            return Ok(Step::Continue);
        };
        let rules = &route.config.ip_rules;
        if rules.is_open() || rules.admits(client_ip(session, ctx)) {
            return Ok(Step::Continue);
        }
        metrics().refusals.with_label_values(&["ip_denied"]).inc();
        Ok(Step::Respond(Refusal::new(
            403,
            "ip_denied",
            "this route does not serve your address",
        )))
    }
}
