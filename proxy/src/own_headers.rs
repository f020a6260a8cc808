//! The header names sluice writes itself (forwarding headers, the request id, its response
//! headers), each parsed once at compile time.
//!
//! Pingora's `insert_header` parses a name again on every call, and for a name outside
//! `http`'s standard set also allocates it; on a plain request that was ~350 instructions
//! per header, six headers a request (bench/NOTES.md). These go to the
//! `insert_parsed_header` of sluice's pingora-http patch (on requests and responses alike)
//! with the parsed name and its spelling instead.

use http::HeaderName;

/// A header name of sluice's own: parsed, and the spelling it is written with.
#[derive(Debug)]
pub struct OwnHeader {
    name: HeaderName,
    wire: &'static str,
}

impl OwnHeader {
    /// `wire` must be a lowercase header name; in a `static` a bad one fails the build.
    pub const fn new(wire: &'static str) -> Self {
        Self {
            name: HeaderName::from_static(wire),
            wire,
        }
    }

    /// The name as written.
    pub fn as_str(&self) -> &'static str {
        self.wire
    }

    /// The parsed name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }
}

/// `X-Forwarded-For`.
pub static X_FORWARDED_FOR: OwnHeader = OwnHeader::new("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub static X_FORWARDED_PROTO: OwnHeader = OwnHeader::new("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub static X_FORWARDED_HOST: OwnHeader = OwnHeader::new("x-forwarded-host");
/// W3C `traceparent`.
pub static TRACEPARENT: OwnHeader = OwnHeader::new("traceparent");
/// The request id: sent upstream, set on every response.
pub static X_REQUEST_ID: OwnHeader = OwnHeader::new("x-request-id");
/// The peer that answered (`server.upstream_header`).
pub static X_SLUICE_UPSTREAM: OwnHeader = OwnHeader::new("x-sluice-upstream");
/// The caller's limit (draft IETF RateLimit headers).
pub static RATELIMIT_POLICY: OwnHeader = OwnHeader::new("ratelimit-policy");
/// The caller's remaining budget.
pub static RATELIMIT: OwnHeader = OwnHeader::new("ratelimit");

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use pingora_http::{RequestHeader, ResponseHeader};

    #[test]
    fn a_parsed_header_replaces_earlier_values_and_keeps_its_spelling_on_the_wire() {
        let mut request = RequestHeader::build("GET", b"/", Some(1)).expect("request");
        request
            .append_header("X-Request-Id", "client")
            .expect("append");
        request.reserve(2).expect("reserve");
        let value = HeaderValue::from_static("ours");
        request
            .insert_parsed_header(X_REQUEST_ID.name().clone(), X_REQUEST_ID.as_str(), value)
            .expect("insert");
        let t = HeaderValue::from_static("t");
        request
            .insert_parsed_header(TRACEPARENT.name().clone(), TRACEPARENT.as_str(), t)
            .expect("insert");
        assert_eq!(request.headers.get_all("x-request-id").iter().count(), 1);
        let mut wire = Vec::new();
        request.header_to_h1_wire(&mut wire);
        let wire = String::from_utf8(wire).expect("utf8");
        assert_eq!(wire, "x-request-id: ours\r\ntraceparent: t\r\n");

        let mut response = ResponseHeader::build(200, Some(1)).expect("response");
        let a = HeaderValue::from_static("a");
        response
            .insert_parsed_header(
                X_SLUICE_UPSTREAM.name().clone(),
                X_SLUICE_UPSTREAM.as_str(),
                a,
            )
            .expect("insert");
        assert_eq!(
            response
                .headers
                .get(X_SLUICE_UPSTREAM.name())
                .map(|v| v.as_bytes()),
            Some(&b"a"[..])
        );
    }
}
