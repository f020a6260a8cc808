//! CORS stage, before auth: a route's `cors:` policy for browser clients.
//!
//! - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//!   here, without the upstream and without credentials (browsers send none on a
//!   preflight): 204 with the `Access-Control-Allow-*` headers when the origin, method and
//!   headers are allowed, 403 `cors_denied` when not.
//! - Any other request with an allowed `Origin` goes on as usual, and its response gets
//!   `Access-Control-Allow-Origin` (plus `-Credentials`, `-Expose-Headers`) and
//!   `Vary: Origin`.

use crate::config::CorsConfig;
use crate::ctx::RequestCtx;
use crate::metrics::metrics;
use crate::own_headers::X_REQUEST_ID;
use crate::respond::Refusal;
use crate::stage::{RequestStage, Step};
use http::Method;
use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Answers preflights and marks the responses of cross-origin requests.
#[derive(Debug, Default)]
pub struct CorsStage;

fn header<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session.req_header().headers.get(name)?.to_str().ok()
}

impl RequestStage for CorsStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Step> {
        let Some(cors) = ctx.route.as_ref().and_then(|r| r.config.cors.as_ref()) else {
            return Ok(Step::Continue);
        };
        let Some(origin) = header(session, "origin") else {
            return Ok(Step::Continue);
        };
        let allowed = cors.allow_origin(origin).map(str::to_string);
        let preflight = session.req_header().method == Method::OPTIONS
            && header(session, "access-control-request-method").is_some();
        if !preflight {
            ctx.cors_origin = allowed;
            return Ok(Step::Continue);
        }
        let method = header(session, "access-control-request-method").unwrap_or_default();
        let headers = header(session, "access-control-request-headers").unwrap_or_default();
        let Some(allowed) = allowed.filter(|_| cors.allows_request(method, headers)) else {
            metrics().refusals.with_label_values(&["cors_denied"]).inc();
            return Ok(Step::Respond(Refusal::new(
                403,
                "cors_denied",
                "this origin, method or header is not allowed here",
            )));
        };
        let mut answer = ResponseHeader::build(204, Some(8))?;
        add_origin(&mut answer, cors, &allowed)?;
        answer.insert_header("access-control-allow-methods", cors.methods_value.as_str())?;
        if !cors.headers_value.is_empty() {
            answer.insert_header("access-control-allow-headers", cors.headers_value.as_str())?;
        }
        answer.insert_header("access-control-max-age", cors.max_age_s.to_string())?;
        if let Some(id) = &ctx.request_id {
            answer.insert_header(X_REQUEST_ID.as_str(), id.clone())?;
        }
        session.set_keepalive(None);
        session
            .write_response_header(Box::new(answer), true)
            .await?;
        Ok(Step::Answered)
    }
}

fn add_origin(response: &mut ResponseHeader, cors: &CorsConfig, origin: &str) -> Result<()> {
    response.insert_header("access-control-allow-origin", origin)?;
    if cors.credentials {
        response.insert_header("access-control-allow-credentials", "true")?;
    }
    if origin != "*" {
        response.append_header("vary", "Origin")?;
    }
    Ok(())
}

impl CorsStage {
    /// `response_filter` (and hedged answers): marks the response of an allowed
    /// cross-origin request.
    pub fn response(&self, response: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
        let (Some(origin), Some(cors)) = (
            &ctx.cors_origin,
            ctx.route.as_ref().and_then(|r| r.config.cors.as_ref()),
        ) else {
            return Ok(());
        };
        add_origin(response, cors, origin)?;
        if !cors.expose_value.is_empty() {
            response.insert_header("access-control-expose-headers", cors.expose_value.as_str())?;
        }
        Ok(())
    }
}
