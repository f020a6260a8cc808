//! HTTPS stage: on the plain listener, a route with `redirect_https` (when
//! `server.tls.redirect_http` is on) answers `308` to the same URL on the HTTPS listener;
//! over TLS, a route's `hsts_max_age_s` becomes `Strict-Transport-Security` on its
//! responses (a browser only heeds it over HTTPS, so it is never sent on plain HTTP).

use crate::ctx::RequestCtx;
use crate::respond::Refusal;
use crate::stage::{RequestStage, Step};
use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Redirects plain requests and marks TLS responses.
#[derive(Debug, Default)]
pub struct HttpsStage;

/// Whether the request arrived over TLS.
pub fn is_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

impl RequestStage for HttpsStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Step> {
        let Some(route) = ctx.route.as_ref().filter(|r| r.config.redirect_https) else {
            return Ok(Step::Continue);
        };
        let tls = ctx.snapshot.config.server.tls.as_ref();
        let Some(tls) = tls.filter(|t| t.redirect_http) else {
            return Ok(Step::Continue);
        };
        if is_tls(session) {
            return Ok(Step::Continue);
        }
        let request = session.req_header();
        let host = request
            .uri
            .host()
            .map(str::to_string)
            .or_else(|| {
                request
                    .headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(|h| strip_port(h).to_string())
            })
            .or_else(|| route.config.host.clone())
            .filter(|h| is_host(h));
        let Some(host) = host else {
            return Ok(Step::Respond(Refusal::new(
                400,
                "bad_host",
                "this route is served over HTTPS; send a valid Host header",
            )));
        };
        let port = tls.listen.port();
        let authority = if port == 443 {
            host
        } else {
            format!("{host}:{port}")
        };
        let target = request
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        Ok(Step::Respond(
            Refusal::new(308, "https_required", "this route is served over HTTPS")
                .with_header("location", format!("https://{authority}{target}")),
        ))
    }
}

impl HttpsStage {
    /// `response_filter`: `Strict-Transport-Security` on TLS responses of routes that
    /// ask for it.
    pub fn response(
        &self,
        session: &Session,
        response: &mut ResponseHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let Some(hsts) = ctx.route.as_ref().and_then(|r| r.config.hsts.as_ref()) else {
            return Ok(());
        };
        if is_tls(session) {
            response.insert_header(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone())?;
        }
        Ok(())
    }
}

/// `host` of `host:port` (IPv6 in brackets kept whole).
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// A host name or address that may go into a `Location` as it is.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_keep_their_name_and_lose_their_port() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("[::1]:9999"), "[::1]");
        assert_eq!(strip_port("localhost"), "localhost");
        assert!(is_host("api.example.com"));
        assert!(!is_host("evil.com/\r\nx"));
        assert!(!is_host("a b"));
        assert!(!is_host(""));
    }
}
