//! Route stage: host + path -> the route of the request's config snapshot (404 JSON when
//! none), and the route's rewrite of the path sent upstream (`strip_prefix`).

use crate::ctx::RequestCtx;
use crate::respond::Refusal;
use crate::router::{path, strip_prefix};
use crate::stage::{RequestStage, Step};
use pingora_core::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use std::borrow::Cow;

/// Finds the route; rewrites the upstream request's path for it.
#[derive(Debug, Default)]
pub struct RouteStage;

/// The host a request is for: the absolute-form target's, else the `Host` header's.
fn request_host(req: &RequestHeader) -> Option<&str> {
    req.uri
        .host()
        .or_else(|| req.headers.get(http::header::HOST)?.to_str().ok())
}

/// Debug builds only: a request to the path in `SLUICE_DEBUG_PANIC_PATH` panics in this
/// stage, so a test can watch what a panic on the request path does to the process.
#[cfg(debug_assertions)]
fn debug_panic(path: &str) {
    static PATH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let wanted = PATH.get_or_init(|| std::env::var("SLUICE_DEBUG_PANIC_PATH").ok());
    if wanted.as_deref() == Some(path) {
        panic!("SLUICE_DEBUG_PANIC_PATH {path} requested");
    }
}

impl RequestStage for RouteStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Step> {
        let req = session.req_header();
        #[cfg(debug_assertions)]
        debug_panic(req.uri.path());
        // Routed (and forwarded) by its normal spelling: see `router::path`.
        let Some(path) = path::normalize(req.uri.path()) else {
            return Ok(Step::Respond(Refusal::new(
                400,
                "bad_path",
                "the path climbs above the root",
            )));
        };
        let found = ctx.snapshot.router.find(request_host(req), &path).cloned();
        let Some(found) = found else {
            return Ok(Step::Respond(Refusal::new(
                404,
                "no_route",
                format!("no route matches {} {}", req.method, path),
            )));
        };
        if let Cow::Owned(normal) = path {
            let uri = with_path(&req.uri, &normal)?;
            session.req_header_mut().set_uri(uri);
        }
        ctx.route = Some(found);
        Ok(Step::Continue)
    }
}

/// `uri` with its path replaced (query kept).
fn with_path(uri: &http::Uri, path: &str) -> Result<http::Uri> {
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    target.parse::<http::Uri>().map_err(|e| {
        Error::because(
            ErrorType::InvalidHTTPHeader,
            "normalizing the request path",
            e,
        )
    })
}

impl RouteStage {
    /// Rewrites the path sent upstream when the route strips its prefix.
    pub fn rewrite(&self, upstream_request: &mut RequestHeader, ctx: &RequestCtx) -> Result<()> {
        let Some(route) = ctx.route.as_ref().filter(|r| r.config.strip_prefix) else {
            return Ok(());
        };
        let original = upstream_request
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str());
        let stripped = strip_prefix(original, &route.config.path_prefix);
        let uri = stripped.parse::<http::Uri>().map_err(|e| {
            Error::because(
                ErrorType::InvalidHTTPHeader,
                "stripping the route prefix",
                e,
            )
        })?;
        upstream_request.set_uri(uri);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_comes_from_an_absolute_target_before_the_header() {
        let mut req = RequestHeader::build("GET", b"/x", None).expect("req");
        req.insert_header("host", "b.example").expect("header");
        req.set_uri(http::Uri::from_static("http://a.example/x"));
        assert_eq!(request_host(&req), Some("a.example"));
        let mut req = RequestHeader::build("GET", b"/x", None).expect("req");
        assert_eq!(request_host(&req), None);
        req.insert_header("host", "b.example:9999").expect("header");
        assert_eq!(request_host(&req), Some("b.example:9999"));
    }
}
