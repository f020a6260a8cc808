//! Forward stage: what the upstream request carries besides the client's own headers.
//!
//! - **Credentials stay here.** On a route with `auth: api_key`, the header that carried
//!   the key (`X-API-Key`, or an `Authorization: Bearer`) is removed unless the route sets
//!   `forward_credentials`; the upstream learns who called from `server.key_id_header` and
//!   `server.tier_header` instead. Those two are removed from every client request
//!   first, on every route, so a client cannot forge them.
//! - **Forwarding headers.** `X-Forwarded-For` gets the socket peer appended when the
//!   peer is a trusted proxy, and is replaced by the peer otherwise (a client's own list
//!   is not passed on as if it were true); `X-Forwarded-Proto` and `X-Forwarded-Host`
//!   are set, or kept when a trusted proxy sent them. `X-Request-Id` is the request's id,
//!   and `traceparent` the one the client stage started, when it did.
//!
//! The same edits apply to the proxied request and to a hedge's copy of it.

use crate::config::AuthMode;
use crate::ctx::RequestCtx;
use crate::own_headers::{
    OwnHeader, TRACEPARENT, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID,
};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_core::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use std::net::IpAddr;

/// The client's own key header.
const API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Rewrites the request headers an upstream sees.
#[derive(Debug, Default)]
pub struct ForwardStage;

/// The edits for one request: headers to drop, then headers to set.
struct Edits {
    remove: [Option<HeaderName>; 4],
    set: [Option<(Name, HeaderValue)>; 7],
}

/// A header to set: one of ours, or a configured one.
#[derive(Debug, Clone)]
enum Name {
    Own(&'static OwnHeader),
    Configured(HeaderName),
}

/// What the edits need to know about the connection.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// The socket peer (the client, or the proxy in front of it).
    pub peer: Option<IpAddr>,
    /// `http` or `https`.
    pub scheme: &'static str,
}

impl Connection {
    /// The connection `session` arrived on.
    pub fn of(session: &Session) -> Self {
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        Self {
            peer: crate::stage::peer_ip(session),
            scheme: if tls { "https" } else { "http" },
        }
    }
}

impl ForwardStage {
    /// `upstream_request_filter`: applies the edits to the request Pingora sends.
    pub fn upstream_request(
        &self,
        conn: Connection,
        request: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let edits = edits(conn, &request.headers, ctx);
        for name in edits.remove.into_iter().flatten() {
            request.remove_header(&name);
        }
        // Room for all of them first: the request's maps were sized for the client's
        // headers, and would otherwise grow (and rehash) several times on the way.
        request.reserve(edits.set.iter().flatten().count())?;
        for (name, value) in edits.set.into_iter().flatten() {
            match name {
                Name::Own(header) => {
                    request.insert_parsed_header(header.name().clone(), header.as_str(), value)?
                }
                Name::Configured(name) => request.insert_header(name, value)?,
            }
        }
        Ok(())
    }

    /// The hedge stage's copy of the request: the same edits.
    pub fn hedged_request(&self, conn: Connection, headers: &mut HeaderMap, ctx: &RequestCtx) {
        let edits = edits(conn, headers, ctx);
        for name in edits.remove.into_iter().flatten() {
            headers.remove(&name);
        }
        for (name, value) in edits.set.into_iter().flatten() {
            match name {
                Name::Own(header) => headers.insert(header.name().clone(), value),
                Name::Configured(name) => headers.insert(name, value),
            };
        }
    }
}

fn edits(conn: Connection, headers: &HeaderMap, ctx: &RequestCtx) -> Edits {
    let server = &ctx.snapshot.config.server;
    let mut edits = Edits {
        remove: [
            Some(server.key_id_header.clone()),
            Some(server.tier_header.clone()),
            None,
            None,
        ],
        set: Default::default(),
    };
    forwarding(conn, headers, ctx, &mut edits.set);
    let Some(route) = ctx.route.as_ref() else {
        return edits;
    };
    if route.config.auth == AuthMode::ApiKey && !route.config.forward_credentials {
        edits.remove[2] = Some(API_KEY);
        // Only a Bearer credential is ours; another scheme (Basic) is the upstream's.
        let bearer = headers.get_all(AUTHORIZATION).iter().any(|v| {
            v.as_bytes()
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case(b"bearer "))
        });
        if bearer {
            edits.remove[3] = Some(AUTHORIZATION);
        }
    }
    if let Some(key) = &ctx.key {
        // Key ids and tier names are checked to be header-safe where they are made; a
        // value that is not is left out rather than failing the request.
        edits.set[5] = HeaderValue::from_str(&key.id)
            .ok()
            .map(|v| (Name::Configured(server.key_id_header.clone()), v));
        edits.set[6] = HeaderValue::from_str(&key.tier)
            .ok()
            .map(|v| (Name::Configured(server.tier_header.clone()), v));
    }
    edits
}

/// `X-Forwarded-*`, `X-Request-Id` and `traceparent`, into `set[0..5]`.
fn forwarding(
    conn: Connection,
    headers: &HeaderMap,
    ctx: &RequestCtx,
    set: &mut [Option<(Name, HeaderValue)>; 7],
) {
    let trusted = ctx.via_trusted_proxy;
    if let Some(peer) = conn.peer {
        let prior: Vec<&str> = if trusted {
            headers
                .get_all(X_FORWARDED_FOR.name())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        } else {
            Vec::new()
        };
        set[0] = forwarded_for(&prior, peer).map(|v| (Name::Own(&X_FORWARDED_FOR), v));
    }
    if !(trusted && headers.contains_key(X_FORWARDED_PROTO.name())) {
        set[1] = Some((
            Name::Own(&X_FORWARDED_PROTO),
            HeaderValue::from_static(conn.scheme),
        ));
    }
    if !(trusted && headers.contains_key(X_FORWARDED_HOST.name())) {
        set[2] = headers
            .get(http::header::HOST)
            .map(|host| (Name::Own(&X_FORWARDED_HOST), host.clone()));
    }
    set[3] = ctx
        .request_id
        .clone()
        .map(|v| (Name::Own(&X_REQUEST_ID), v));
    set[4] = ctx
        .traceparent
        .clone()
        .map(|v| (Name::Own(&TRACEPARENT), v));
}

/// `X-Forwarded-For`: the believed `prior` entries, then `peer`. Built by hand and
/// handed over without a copy: `Display` for an address costs several times more, on
/// every request.
fn forwarded_for(prior: &[&str], peer: IpAddr) -> Option<HeaderValue> {
    let mut value = String::with_capacity(prior.iter().map(|p| p.len() + 2).sum::<usize>() + 15);
    for entry in prior {
        value.push_str(entry);
        value.push_str(", ");
    }
    push_ip(&mut value, peer);
    HeaderValue::try_from(value).ok()
}

/// Appends `ip` as `Display` writes it.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "192.168.100.99",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
        let v = forwarded_for(
            &["203.0.113.9", "10.0.0.1"],
            "127.0.0.2".parse().expect("ip"),
        );
        assert_eq!(
            v.as_ref().map(|v| v.to_str().ok()),
            Some(Some("203.0.113.9, 10.0.0.1, 127.0.0.2"))
        );
    }
}
