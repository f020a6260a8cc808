//! WebSocket stage: an `Upgrade: websocket` request is served only on a route with
//! `websocket: true` (elsewhere: 400, so an upstream never sees an upgrade its route was
//! not meant to carry). On such a route the upstream's read timeout becomes the route's
//! `websocket_idle_timeout_s`: once upgraded, a connection with no frame in either
//! direction for that long is closed. Pingora relays the upgraded bytes both ways; the
//! log stage counts the connection as one request, with its duration and bytes.

use crate::ctx::RequestCtx;
use crate::respond::Refusal;
use crate::stage::{RequestStage, Step};
use http::header::UPGRADE;
use pingora_core::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;

/// Admits WebSocket upgrades where the route allows them.
#[derive(Debug, Default)]
pub struct WebSocketStage;

/// Whether `req` asks to become a WebSocket.
pub fn is_websocket_upgrade(req: &RequestHeader) -> bool {
    req.headers.get_all(UPGRADE).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"websocket"))
    })
}

impl RequestStage for WebSocketStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Step> {
        if !is_websocket_upgrade(session.req_header()) {
            return Ok(Step::Continue);
        }
        let idle = ctx.route.as_ref().and_then(|r| r.config.websocket_idle);
        match idle {
            Some(idle) => {
                ctx.websocket_idle = Some(idle);
                Ok(Step::Continue)
            }
            None => Ok(Step::Respond(Refusal::new(
                400,
                "websocket_not_allowed",
                "this route does not accept WebSocket upgrades",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upgrade_token_is_found_in_any_case_and_list_position() {
        let req = |v: &str| {
            let mut r = RequestHeader::build("GET", b"/", None).expect("request");
            r.insert_header("upgrade", v).expect("header");
            r
        };
        assert!(is_websocket_upgrade(&req("websocket")));
        assert!(is_websocket_upgrade(&req("WebSocket")));
        assert!(is_websocket_upgrade(&req("h2c, websocket")));
        assert!(!is_websocket_upgrade(&req("h2c")));
        let plain = RequestHeader::build("GET", b"/", None).expect("request");
        assert!(!is_websocket_upgrade(&plain));
    }
}
