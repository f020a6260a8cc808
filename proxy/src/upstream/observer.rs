//! What happens when a health check changes its mind about a peer, whatever the kind of
//! check (HTTP or gRPC).

use crate::breaker::Breaker;
use crate::metrics::metrics;
use async_trait::async_trait;
use pingora_load_balancing::health_check::HealthObserve;
use pingora_load_balancing::Backend;
use tracing::{info, warn};

/// Records health changes: the `sluice_upstream_healthy` gauge, a log line, and a reset
/// breaker for a peer that recovers.
pub struct Observer {
    pub(super) upstream: String,
    /// A peer the checks see recover gets its breaker closed: the checks saw it fail
    /// and now see it work, which is a stronger signal than waiting out `open_ms`.
    pub(super) breakers: Vec<(std::net::SocketAddr, std::sync::Arc<Breaker>)>,
}

#[async_trait]
impl HealthObserve for Observer {
    async fn observe(&self, target: &Backend, healthy: bool) {
        let peer = target.addr.to_string();
        metrics()
            .upstream_healthy
            .with_label_values(&[&self.upstream, &peer])
            .set(i64::from(healthy));
        if healthy {
            info!(upstream = %self.upstream, %peer, "peer is healthy again");
            let breaker = self
                .breakers
                .iter()
                .find(|(addr, _)| target.addr.as_inet() == Some(addr));
            if let Some((_, breaker)) = breaker {
                crate::breaker::report_transition(&self.upstream, &peer, breaker.reset());
            }
        } else {
            warn!(upstream = %self.upstream, %peer, "peer failed its health checks; taking it out");
        }
    }
}
