//! Client stage, first in the pipeline: who is calling, and which request this is.
//!
//! - The client's address is the socket's peer, unless that peer is one of
//!   `server.trusted_proxies`: then `X-Forwarded-For` is read from the right, and the
//!   first address that is not a trusted proxy is the client (the rightmost entries are
//!   the ones the trusted proxies added; anything left of them the client could forge).
//!   Every later use (IP rules, per-IP limits, auth-failure limits, the event) sees it.
//! - The request id is the client's `X-Request-Id` when it is a sane token (1–128 of
//!   `A-Z a-z 0-9 - _ . : @`), else a fresh one; it goes upstream, back on the response
//!   and into the event.
//! - A request without a valid W3C `traceparent` gets a new one (the upstream's spans
//!   then join a trace); a valid one is passed on untouched.

use crate::ctx::RequestCtx;
use crate::ids::{is_valid_traceparent, IdSource};
use crate::net::cidr::{any_contains, Cidr};
use crate::own_headers::{TRACEPARENT, X_FORWARDED_FOR, X_REQUEST_ID};
use crate::stage::{RequestStage, Step};
use http::HeaderMap;
use pingora_core::Result;
use pingora_proxy::Session;
use std::net::IpAddr;
use std::sync::Arc;

/// The longest client-sent request id kept.
const MAX_REQUEST_ID: usize = 128;

/// Finds the client's address and the request's id.
#[derive(Debug)]
pub struct ClientStage {
    ids: Arc<IdSource>,
}

impl ClientStage {
    /// Ids for requests without their own come from `ids`.
    pub fn new(ids: Arc<IdSource>) -> Self {
        Self { ids }
    }
}

impl RequestStage for ClientStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Step> {
        let peer = crate::stage::peer_ip(session);
        let headers = &session.req_header().headers;
        let trusted = &ctx.snapshot.config.server.trusted_proxies;
        ctx.via_trusted_proxy = peer.is_some_and(|ip| any_contains(trusted, ip));
        ctx.client_ip = if ctx.via_trusted_proxy {
            forwarded_client(headers, trusted).or(peer)
        } else {
            peer
        };
        ctx.request_id = match headers
            .get(X_REQUEST_ID.name())
            .filter(|v| is_sane_request_id(v.as_bytes()))
        {
            // The client's own value shares its bytes with the parsed request.
            Some(id) => Some(id.clone()),
            None => self.ids.next_id_value(),
        };
        let traced = headers
            .get(TRACEPARENT.name())
            .is_some_and(|v| is_valid_traceparent(v.as_bytes()));
        if !traced {
            ctx.traceparent = self.ids.next_traceparent();
        }
        Ok(Step::Continue)
    }
}

/// The first address in `X-Forwarded-For`, read from the right, that is not a trusted
/// proxy; the leftmost when all are (a chain of our own proxies).
fn forwarded_client(headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR.name()) {
        let Ok(text) = value.to_str() else {
            // Unreadable: nothing in it can be believed, and nothing left of it either.
            hops.clear();
            continue;
        };
        for hop in text.split(',') {
            match parse_hop(hop) {
                Some(ip) => hops.push(ip),
                None => hops.clear(),
            }
        }
    }
    hops.iter()
        .rev()
        .find(|ip| !any_contains(trusted, **ip))
        .or_else(|| hops.first())
        .copied()
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:80`,
/// `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        // The client forged 6.6.6.6; the load balancer appended the real one.
        assert_eq!(
            forwarded_client(&xff(&["6.6.6.6, 203.0.113.7"]), &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            forwarded_client(&xff(&["203.0.113.7", "10.0.0.2"]), &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            forwarded_client(&xff(&["10.0.0.3, 10.0.0.2"]), &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(
            forwarded_client(&xff(&["[2001:db8::1]:443"]), &trusted),
            ip("2001:db8::1")
        );
        // Garbage cuts the chain: nothing left of it is believed.
        assert_eq!(forwarded_client(&xff(&["1.1.1.1, junk"]), &trusted), None);
        assert_eq!(forwarded_client(&HeaderMap::new(), &trusted), None);
    }

    #[test]
    fn request_ids_from_clients_must_be_short_plain_tokens() {
        assert!(is_sane_request_id(b"abc-123_x.y:z@w"));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id("a".repeat(129).as_bytes()));
        assert!(!is_sane_request_id(b"a b"));
        assert!(!is_sane_request_id(b"a\"b"));
    }
}
