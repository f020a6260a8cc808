//! Upstream groups: a round-robin [`LoadBalancer`] over the peers, with active health
//! checks (see [`health`]) deciding which peers may take traffic.

pub mod health;

use crate::config::UpstreamConfig;
use crate::metrics::metrics;
use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, LoadBalancer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// One named group of interchangeable peers.
pub struct UpstreamGroup {
    /// Group name from the config.
    pub name: String,
    /// The settings it was built from; a reload keeps the group when these are equal.
    pub config: UpstreamConfig,
    lb: LoadBalancer<RoundRobin>,
    /// Peer labels, pre-rendered once so the request path does not format addresses.
    labels: Vec<(SocketAddr, String)>,
    check_running: AtomicBool,
    last_check: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for UpstreamGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamGroup")
            .field("name", &self.name)
            .field("peers", &self.config.peers)
            .finish()
    }
}

/// Errors building a group.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Pingora refused the peer list.
    #[error("upstream {name}: {source}")]
    Build {
        /// Group name.
        name: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl UpstreamGroup {
    /// Builds the group; every peer starts healthy until checks say otherwise.
    pub fn new(name: &str, config: UpstreamConfig) -> Result<Self, UpstreamError> {
        let mut lb = LoadBalancer::<RoundRobin>::try_from_iter(config.peers.iter().copied())
            .map_err(|source| UpstreamError::Build {
                name: name.to_string(),
                source,
            })?;
        lb.set_health_check(health::http_check(name, &config.health_check));
        let labels = config
            .peers
            .iter()
            .map(|peer| (*peer, peer.to_string()))
            .collect::<Vec<_>>();
        for (_, label) in &labels {
            metrics()
                .upstream_healthy
                .with_label_values(&[name, label])
                .set(1);
        }
        Ok(Self {
            name: name.to_string(),
            config,
            lb,
            labels,
            check_running: AtomicBool::new(false),
            last_check: Mutex::new(None),
        })
    }

    /// Next healthy peer in round-robin order that `accept` admits.
    pub fn select(&self, accept: impl Fn(&SocketAddr) -> bool) -> Option<SocketAddr> {
        let max = self.labels.len() * 2 + 1;
        self.lb
            .select_with(b"", max, |backend, healthy| {
                healthy && backend.addr.as_inet().is_some_and(&accept)
            })
            .and_then(|backend| backend.addr.as_inet().copied())
    }

    /// An [`HttpPeer`] for `addr` with this group's timeouts.
    pub fn peer(&self, addr: SocketAddr) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(self.config.connect_timeout);
        peer.options.read_timeout = Some(self.config.read_timeout);
        Box::new(peer)
    }

    /// The metrics label of `addr` (its `ip:port`).
    pub fn label(&self, addr: &SocketAddr) -> &str {
        self.labels
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, label)| label.as_str())
            .unwrap_or("unknown")
    }

    /// Each peer with its current health.
    pub fn peer_health(&self) -> Vec<(SocketAddr, bool)> {
        self.config
            .peers
            .iter()
            .map(|addr| {
                let backend = Backend {
                    addr: PingoraAddr::Inet(*addr),
                    weight: 1,
                    ext: Default::default(),
                };
                (*addr, self.lb.backends().ready(&backend))
            })
            .collect()
    }

    /// Claims the next health-check pass if the interval has passed and none is running;
    /// the caller then runs [`Self::run_check`].
    pub fn begin_check_if_due(&self, now: Instant) -> bool {
        let Ok(mut last) = self.last_check.lock() else {
            return false;
        };
        if last.is_some_and(|t| now.duration_since(t) < self.config.health_check.interval) {
            return false;
        }
        if self.check_running.swap(true, Ordering::AcqRel) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Checks every peer as often as it takes to mark a dead one unhealthy, back to back,
    /// before a new group takes traffic.
    pub async fn check_before_traffic(&self) {
        for _ in 0..self.config.health_check.unhealthy_after {
            self.lb.backends().run_health_check(true).await;
        }
        if let Ok(mut last) = self.last_check.lock() {
            *last = Some(Instant::now());
        }
    }

    /// Checks every peer once (in parallel) and releases the claim.
    pub async fn run_check(&self) {
        self.lb.backends().run_health_check(true).await;
        self.check_running.store(false, Ordering::Release);
    }
}
