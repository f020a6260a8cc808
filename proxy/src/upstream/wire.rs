//! How sluice talks to a group's peers: HTTP/1.1, HTTP/2 over TLS (ALPN h2) or cleartext
//! HTTP/2 (h2c, prior knowledge), and TLS with the group's SNI, verification and CAs.
//! One function sets it on a peer, so requests, hedges and health checks all connect
//! the same way.

use crate::config::{UpstreamConfig, UpstreamProtocol};
use pingora_core::upstreams::peer::HttpPeer;
use std::net::SocketAddr;

/// Concurrent streams sluice opens on one HTTP/2 connection to a peer.
const H2_STREAMS_PER_CONNECTION: usize = 100;

/// A peer for `addr` speaking `config`'s protocol, with its TLS settings.
pub fn peer(addr: SocketAddr, config: &UpstreamConfig) -> HttpPeer {
    let sni = config
        .tls
        .as_ref()
        .map(|t| t.sni.clone())
        .unwrap_or_default();
    let mut peer = HttpPeer::new(addr, config.tls.is_some(), sni);
    apply(&mut peer, config);
    peer
}

/// Sets `config`'s protocol and TLS options on `peer` (a health check's template too).
pub fn apply(peer: &mut HttpPeer, config: &UpstreamConfig) {
    match config.protocol {
        UpstreamProtocol::Http1 => {}
        UpstreamProtocol::H2 | UpstreamProtocol::H2c => {
            // h2 only: for h2c there is no negotiation, and an h2 group is asked for
            // HTTP/2 because its traffic (gRPC) needs it.
            peer.options.set_http_version(2, 2);
            peer.options.max_h2_streams = H2_STREAMS_PER_CONNECTION;
        }
    }
    if let Some(tls) = &config.tls {
        peer.options.verify_cert = tls.verify;
        peer.options.verify_hostname = tls.verify;
        if let Some(ca) = &tls.ca {
            peer.options.ca = Some(ca.certs.clone());
        }
    }
}
