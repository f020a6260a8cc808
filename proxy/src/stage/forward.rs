//! Forward stage: what the upstream request carries in place of the client's secrets.
//!
//! On a route with `auth: api_key`, the header that carried the key (`X-API-Key`, or an
//! `Authorization: Bearer`) is removed unless the route sets `forward_credentials`; the
//! upstream learns who called from `server.key_id_header` and `server.tier_header`
//! instead. Those two are removed from every client request first, on every route, so
//! a client cannot forge them. The same edits apply to the proxied request and to a
//! hedge's copy of it.

use crate::config::AuthMode;
use crate::ctx::RequestCtx;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_core::Result;
use pingora_http::RequestHeader;

/// The client's own key header.
const API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Rewrites the request headers an upstream sees.
#[derive(Debug, Default)]
pub struct ForwardStage;

/// The edits for one request: headers to drop, then headers to set.
struct Edits {
    remove: [Option<HeaderName>; 4],
    set: [Option<(HeaderName, HeaderValue)>; 2],
}

impl ForwardStage {
    /// `upstream_request_filter`: applies the edits to the request Pingora sends.
    pub fn upstream_request(&self, request: &mut RequestHeader, ctx: &RequestCtx) -> Result<()> {
        let edits = edits(&request.headers, ctx);
        for name in edits.remove.into_iter().flatten() {
            request.remove_header(&name);
        }
        for (name, value) in edits.set.into_iter().flatten() {
            request.insert_header(name, value)?;
        }
        Ok(())
    }

    /// The hedge stage's copy of the request: the same edits.
    pub fn hedged_request(&self, headers: &mut HeaderMap, ctx: &RequestCtx) {
        let edits = edits(headers, ctx);
        for name in edits.remove.into_iter().flatten() {
            headers.remove(&name);
        }
        for (name, value) in edits.set.into_iter().flatten() {
            headers.insert(name, value);
        }
    }
}

fn edits(headers: &HeaderMap, ctx: &RequestCtx) -> Edits {
    let server = &ctx.snapshot.config.server;
    let mut edits = Edits {
        remove: [
            Some(server.key_id_header.clone()),
            Some(server.tier_header.clone()),
            None,
            None,
        ],
        set: [None, None],
    };
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
        edits.set[0] = HeaderValue::from_str(&key.id)
            .ok()
            .map(|v| (server.key_id_header.clone(), v));
        edits.set[1] = HeaderValue::from_str(&key.tier)
            .ok()
            .map(|v| (server.tier_header.clone(), v));
    }
    edits
}
