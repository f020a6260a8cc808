//! gRPC health checks (`grpc.health.v1.Health/Check`) for HTTP/2 groups: a peer is
//! healthy when it answers `SERVING` for the configured service with `grpc-status: 0`.
//! The request is sent with Pingora's own HTTP/2 client, over the group's wire settings.

use super::observer::Observer;
use crate::config::{HealthCheckConfig, UpstreamConfig};
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::{HealthCheck, HealthObserve};
use pingora_load_balancing::Backend;

/// `HealthCheckResponse.status` for a server that serves.
const SERVING: u64 = 1;

/// Checks one group's peers with the gRPC health protocol.
pub struct GrpcHealthCheck {
    connector: Connector,
    template: pingora_core::upstreams::peer::HttpPeer,
    request_body: Bytes,
    /// `:authority` of the checks: the group's TLS name, else `localhost`.
    authority: String,
    cfg: HealthCheckConfig,
    observer: Observer,
}

impl GrpcHealthCheck {
    /// A check of `service` on the peers of `config`.
    pub fn new(config: &UpstreamConfig, service: &str, observer: Observer) -> Self {
        let placeholder = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut template = super::wire::peer(placeholder, config);
        let t = config.health_check.timeout;
        template.options.connection_timeout = Some(t);
        template.options.total_connection_timeout = Some(t);
        template.options.read_timeout = Some(t);
        template.options.write_timeout = Some(t);
        Self {
            connector: Connector::new(None),
            template,
            request_body: grpc_frame(&check_request(service)),
            authority: config
                .tls
                .as_ref()
                .map(|t| t.sni.clone())
                .filter(|sni| !sni.is_empty())
                .unwrap_or_else(|| "localhost".to_string()),
            cfg: config.health_check.clone(),
            observer,
        }
    }

    async fn ask(&self, target: &Backend) -> Result<()> {
        let mut peer = self.template.clone();
        peer._address = target.addr.clone();
        let (mut session, _) = self.connector.get_http_session(&peer).await?;
        let mut req = RequestHeader::build("POST", b"/grpc.health.v1.Health/Check", None)?;
        req.insert_header("content-type", "application/grpc")?;
        req.insert_header("te", "trailers")?;
        req.insert_header("host", self.authority.as_str())?;
        session.write_request_header(Box::new(req)).await?;
        session
            .write_request_body(self.request_body.clone(), true)
            .await?;
        session.finish_request_body().await?;
        session.read_response_header().await?;
        let header = session
            .response_header()
            .ok_or_else(|| fail("no response header"))?;
        if header.status.as_u16() != 200 {
            return Err(fail(format!("HTTP status {}", header.status.as_u16())));
        }
        // A Trailers-Only answer carries its status in the header.
        if let Some(status) = header.headers.get("grpc-status") {
            if status.as_bytes() != b"0" {
                return Err(fail(format!("grpc-status {status:?}")));
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = session.read_response_body().await? {
            body.extend_from_slice(&chunk);
            if body.len() > 1024 {
                return Err(fail("health answer too large"));
            }
        }
        if let HttpSession::H2(h2) = &mut session {
            if let Some(trailers) = h2.read_trailers().await? {
                if let Some(status) = trailers.get("grpc-status") {
                    if status.as_bytes() != b"0" {
                        return Err(fail(format!("grpc-status {status:?}")));
                    }
                }
            }
        }
        match serving_status(&body) {
            Some(SERVING) => {
                self.connector
                    .release_http_session(session, &peer, None)
                    .await;
                Ok(())
            }
            other => Err(fail(format!("health status {other:?}, not SERVING"))),
        }
    }
}

fn fail(message: impl Into<String>) -> Box<Error> {
    Error::explain(ErrorType::Custom("grpc health check"), message.into())
}

#[async_trait]
impl HealthCheck for GrpcHealthCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        match tokio::time::timeout(self.cfg.timeout, self.ask(target)).await {
            Ok(result) => result,
            Err(_) => Err(fail("timed out")),
        }
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        self.observer.observe(target, healthy).await;
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.cfg.healthy_after
        } else {
            self.cfg.unhealthy_after
        }
    }
}

/// `HealthCheckRequest { service }` in protobuf: field 1, length-delimited.
fn check_request(service: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(service.len() + 3);
    if !service.is_empty() {
        out.push(0x0a);
        push_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A gRPC message frame: uncompressed flag, 4-byte big-endian length, the message.
fn grpc_frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    Bytes::from(out)
}

/// `HealthCheckResponse.status` (field 1, varint) from one framed answer; 0 (UNKNOWN)
/// when the field is absent, as protobuf defaults it.
fn serving_status(body: &[u8]) -> Option<u64> {
    let (header, rest) = body.split_first_chunk::<5>()?;
    if header[0] != 0 {
        return None; // compressed: never asked for
    }
    let len = usize::try_from(u32::from_be_bytes([
        header[1], header[2], header[3], header[4],
    ]))
    .ok()?;
    let mut msg = rest.get(..len)?;
    while let Some((&key, tail)) = msg.split_first() {
        let (value, used) = read_varint(tail)?;
        match (key >> 3, key & 7) {
            (1, 0) => return Some(value),
            (_, 0) => msg = tail.get(used..)?,
            // Not a varint field: skip a length-delimited one, give up on the rest.
            (_, 2) => msg = tail.get(used..)?.get(usize::try_from(value).ok()?..)?,
            _ => return None,
        }
    }
    Some(0)
}

fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_framed_and_answers_read() {
        assert_eq!(&grpc_frame(&check_request(""))[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &grpc_frame(&check_request("echo"))[..],
            &[0, 0, 0, 0, 6, 0x0a, 4, b'e', b'c', b'h', b'o']
        );
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(SERVING));
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(
            serving_status(&[0, 0, 0, 0, 0]),
            Some(0),
            "UNKNOWN by default"
        );
        assert_eq!(serving_status(&[0, 0, 0, 0, 9, 0x08]), None, "truncated");
        assert_eq!(
            serving_status(&[1, 0, 0, 0, 2, 0x08, 1]),
            None,
            "compressed"
        );
        assert_eq!(serving_status(&[0, 0, 0]), None);
    }
}
