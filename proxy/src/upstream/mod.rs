//! Upstream groups: a round-robin [`LoadBalancer`] over the peers, with active health
//! checks (see [`health`]) deciding which peers may take traffic.

pub mod grpc_health;
pub mod health;
pub mod observer;
pub mod wire;

use crate::breaker::{Breaker, BreakerState, Transition};
use crate::config::UpstreamConfig;
use crate::metrics::metrics;
use crate::respond::{code, Refusal};
use http::HeaderValue;
use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, LoadBalancer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How one attempt at a peer ended, as `sluice_upstream_requests_total{outcome}` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The peer answered with a status that is not a server error.
    Ok,
    /// The peer answered 5xx.
    Http5xx,
    /// No connection could be made.
    ConnectError,
    /// The connection failed or timed out after it was made.
    Error,
}

impl AttemptOutcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Http5xx => "http_5xx",
            Self::ConnectError => "connect_error",
            Self::Error => "error",
        }
    }
}

/// One named group of interchangeable peers.
pub struct UpstreamGroup {
    /// Group name from the config.
    pub name: String,
    /// The settings it was built from; a reload keeps the group when these are equal.
    pub config: UpstreamConfig,
    lb: LoadBalancer<RoundRobin>,
    /// Each peer's label (pre-rendered so the request path does not format addresses)
    /// and circuit breaker.
    peers: Vec<PeerState>,
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

/// The label of a peer the group does not know (as [`UpstreamGroup::label`] says it).
const UNKNOWN_PEER: HeaderValue = HeaderValue::from_static("unknown");

struct PeerState {
    addr: SocketAddr,
    label: String,
    /// `label` as the `X-Sluice-Upstream` value, shared by every response from the peer.
    label_value: HeaderValue,
    breaker: Arc<Breaker>,
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
        let peers = config
            .peers
            .iter()
            .map(|addr| {
                let label = addr.to_string();
                PeerState {
                    addr: *addr,
                    // An address's own text is always a valid value.
                    label_value: HeaderValue::from_str(&label).unwrap_or(UNKNOWN_PEER),
                    label,
                    breaker: Arc::new(Breaker::new(config.breaker.clone())),
                }
            })
            .collect::<Vec<_>>();
        let breakers = peers.iter().map(|p| (p.addr, p.breaker.clone())).collect();
        lb.set_health_check(health::check_for(name, &config, breakers));
        // Series that exist from the start read as 0 instead of "no data" in rate() and on
        // dashboards until the first retry or hedge.
        metrics().retries.with_label_values(&[name]);
        for result in ["sent", "won", "lost", "skipped_budget"] {
            metrics().hedges.with_label_values(&[name, result]);
        }
        for peer in &peers {
            metrics()
                .upstream_healthy
                .with_label_values(&[name, &peer.label])
                .set(1);
            metrics()
                .breaker_state
                .with_label_values(&[name, &peer.label])
                .set(0);
        }
        Ok(Self {
            name: name.to_string(),
            config,
            lb,
            peers,
            check_running: AtomicBool::new(false),
            last_check: Mutex::new(None),
        })
    }

    fn peer_state(&self, addr: &SocketAddr) -> Option<&PeerState> {
        self.peers.iter().find(|p| p.addr == *addr)
    }

    /// Next peer in round-robin order that is healthy, that `accept` admits and whose
    /// breaker lets the request through (taking a half-open probe slot if it is the one).
    pub fn select(&self, accept: impl Fn(&SocketAddr) -> bool) -> Option<SocketAddr> {
        let max = self.peers.len() * 2 + 1;
        let now = tokio::time::Instant::now();
        self.lb
            .select_with(b"", max, |backend, healthy| {
                let Some(addr) = backend.addr.as_inet() else {
                    return false;
                };
                healthy
                    && accept(addr)
                    && self.peer_state(addr).is_none_or(|p| {
                        let (admitted, transition) = p.breaker.admit(now);
                        self.report(p, transition);
                        admitted
                    })
            })
            .and_then(|backend| backend.addr.as_inet().copied())
    }

    /// The breaker state of peer `addr` now.
    pub fn breaker_state(&self, addr: &SocketAddr) -> Option<BreakerState> {
        self.peer_state(addr)
            .map(|p| p.breaker.state(tokio::time::Instant::now()))
    }

    /// Accounts for one finished attempt: its breaker outcome and
    /// `sluice_upstream_requests_total{outcome}`.
    pub fn attempt_finished(&self, addr: &SocketAddr, failed: bool, outcome: AttemptOutcome) {
        self.record(addr, failed);
        metrics()
            .upstream_requests
            .with_label_values(&[&self.name, self.label(addr), outcome.as_str()])
            .inc();
    }

    /// Feeds one attempt's outcome to the peer's breaker.
    pub fn record(&self, addr: &SocketAddr, failed: bool) {
        if let Some(p) = self.peer_state(addr) {
            let transition = p.breaker.record(tokio::time::Instant::now(), failed);
            self.report(p, transition);
        }
    }

    /// Whether `status` counts as a failure for the breaker.
    pub fn is_failure_status(&self, status: u16) -> bool {
        self.config.breaker.failure_statuses.contains(&status)
    }

    fn report(&self, p: &PeerState, transition: Option<Transition>) {
        crate::breaker::report_transition(&self.name, &p.label, transition);
    }

    /// Why no peer could be chosen, as the answer to send: 503 with `Retry-After` when
    /// every healthy peer's breaker is open, else 503 `no_healthy_upstream`.
    pub fn refusal_when_none(&self) -> Refusal {
        match self.all_open_for() {
            Some(wait) => Refusal::new(
                503,
                code::CIRCUIT_OPEN,
                format!(
                    "every peer of upstream \"{}\" is failing; circuit open",
                    self.name
                ),
            )
            .with_header(
                "retry-after",
                wait.as_secs_f64().ceil().max(1.0).to_string(),
            ),
            None => Refusal::new(
                503,
                "no_healthy_upstream",
                format!("no healthy peer in upstream \"{}\"", self.name),
            ),
        }
    }

    /// When there are healthy peers and every one's breaker is open: how long until the
    /// first lets a probe through. `None` when some peer could take traffic now, or when
    /// no peer is healthy at all (that is the health checks' verdict, not the breakers').
    pub fn all_open_for(&self) -> Option<std::time::Duration> {
        let now = tokio::time::Instant::now();
        let healthy: Vec<(SocketAddr, bool, BreakerState)> = self.peer_health();
        let mut wait: Option<std::time::Duration> = None;
        for (addr, is_healthy, _) in healthy {
            if !is_healthy {
                continue;
            }
            let left = self.peer_state(&addr)?.breaker.open_remaining(now);
            if left.is_zero() {
                return None;
            }
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        wait
    }

    /// An [`HttpPeer`] for `addr` with this group's timeouts.
    pub fn peer(&self, addr: SocketAddr) -> Box<HttpPeer> {
        let mut peer = wire::peer(addr, &self.config);
        peer.options.connection_timeout = Some(self.config.connect_timeout);
        peer.options.read_timeout = Some(self.config.read_timeout);
        Box::new(peer)
    }

    /// The metrics label of `addr` (its `ip:port`).
    pub fn label(&self, addr: &SocketAddr) -> &str {
        self.peer_state(addr)
            .map_or("unknown", |p| p.label.as_str())
    }

    /// [`Self::label`] as a header value (a reference count, not a copy).
    pub fn label_value(&self, addr: &SocketAddr) -> HeaderValue {
        self.peer_state(addr)
            .map_or(UNKNOWN_PEER, |p| p.label_value.clone())
    }

    /// Each peer with its current health and breaker state.
    pub fn peer_health(&self) -> Vec<(SocketAddr, bool, BreakerState)> {
        let now = tokio::time::Instant::now();
        self.peers
            .iter()
            .map(|p| {
                let backend = Backend {
                    addr: PingoraAddr::Inet(p.addr),
                    weight: 1,
                    ext: Default::default(),
                };
                (
                    p.addr,
                    self.lb.backends().ready(&backend),
                    p.breaker.state(now),
                )
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
