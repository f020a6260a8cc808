//! Prometheus metrics, prefix `sluice_`, in one registry served by the admin listener.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::OnceLock;

/// Latency buckets in seconds: fine below 10 ms, where a gateway's overhead lives.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric sluice exports.
pub struct Metrics {
    registry: Registry,
    /// `sluice_requests_total{route,status}`.
    pub requests: IntCounterVec,
    /// `sluice_request_duration_seconds{route}`.
    pub request_duration: HistogramVec,
    /// `sluice_upstream_requests_total{upstream,peer,outcome}`.
    pub upstream_requests: IntCounterVec,
    /// `sluice_upstream_healthy{upstream,peer}`: 1 healthy, 0 not.
    pub upstream_healthy: IntGaugeVec,
    /// `sluice_retries_total{upstream}`.
    pub retries: IntCounterVec,
    /// `sluice_config_reloads_total{result}`: `ok` or `error`.
    pub config_reloads: IntCounterVec,
    /// `sluice_ratelimit_decisions_total{tier,decision,mode}`.
    pub ratelimit_decisions: IntCounterVec,
    /// `sluice_auth_failures_total{reason}`.
    pub auth_failures: IntCounterVec,
    /// `sluice_breaker_state{upstream,peer}`: 0 closed, 1 open, 2 half-open.
    pub breaker_state: IntGaugeVec,
    /// `sluice_breaker_transitions_total{upstream,peer,to}`.
    pub breaker_transitions: IntCounterVec,
    /// `sluice_hedges_total{upstream,result}`: sent, won, lost, skipped_budget.
    pub hedges: IntCounterVec,
    /// `sluice_kafka_events_total{result}`: queued, spilled, delivered, dropped.
    pub kafka_events: IntCounterVec,
    /// `sluice_kafka_queue_depth`: events waiting in sluice's queue and librdkafka's.
    pub kafka_queue_depth: prometheus::IntGauge,
    /// `sluice_access_log_lines_total{result}`: `written` or `dropped`.
    pub access_log_lines: IntCounterVec,
    /// `sluice_refusals_total{reason}`: requests the front-door stages refused.
    pub refusals: IntCounterVec,
    /// `sluice_client_connections`: client connections open on the proxy listener.
    pub client_connections: prometheus::IntGauge,
    /// `sluice_header_timeouts_total`: connections closed because a request header did
    /// not arrive within `server.client_header_timeout_ms`.
    pub header_timeouts: prometheus::IntCounter,
    /// `sluice_tls_certificates_served_total{result}`: TLS handshakes that were given
    /// their certificate (`ok`) or could not be (`error`).
    pub tls_certificates_served: IntCounterVec,
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "sluice_requests_total",
                "Requests answered, by route and status.",
            ),
            &["route", "status"],
        );
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "sluice_request_duration_seconds",
                "Time from request start to the end of the response, by route.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route"],
        );
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "sluice_upstream_requests_total",
                "Attempts sent to upstream peers, by outcome (ok, http_5xx, connect_error, error).",
            ),
            &["upstream", "peer", "outcome"],
        );
        let upstream_healthy = IntGaugeVec::new(
            Opts::new(
                "sluice_upstream_healthy",
                "1 when the peer passes its health checks.",
            ),
            &["upstream", "peer"],
        );
        let retries = IntCounterVec::new(
            Opts::new("sluice_retries_total", "Attempts retried on another peer."),
            &["upstream"],
        );
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "sluice_config_reloads_total",
                "Config reload attempts, by result.",
            ),
            &["result"],
        );
        let ratelimit_decisions = IntCounterVec::new(
            Opts::new(
                "sluice_ratelimit_decisions_total",
                "Rate limit decisions by tier, decision (allowed, limited, unavailable) and mode (redis, local, open, closed).",
            ),
            &["tier", "decision", "mode"],
        );
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "sluice_auth_failures_total",
                "Requests refused by the auth stage, by reason.",
            ),
            &["reason"],
        );
        let breaker_state = IntGaugeVec::new(
            Opts::new(
                "sluice_breaker_state",
                "Circuit breaker per peer: 0 closed, 1 open, 2 half-open.",
            ),
            &["upstream", "peer"],
        );
        let breaker_transitions = IntCounterVec::new(
            Opts::new(
                "sluice_breaker_transitions_total",
                "Circuit breaker state changes, by the state entered.",
            ),
            &["upstream", "peer", "to"],
        );
        let hedges = IntCounterVec::new(
            Opts::new(
                "sluice_hedges_total",
                "Hedged requests: sent, won (the hedge answered), lost, skipped_budget.",
            ),
            &["upstream", "result"],
        );
        let kafka_events = IntCounterVec::new(
            Opts::new(
                "sluice_kafka_events_total",
                "Request events: queued, spilled (to kafka.spill_dir), delivered, dropped.",
            ),
            &["result"],
        );
        let kafka_queue_depth = prometheus::IntGauge::new(
            "sluice_kafka_queue_depth",
            "Request events waiting for the broker.",
        );
        let access_log_lines = IntCounterVec::new(
            Opts::new(
                "sluice_access_log_lines_total",
                "Access log lines written, or dropped (queue full, file unwritable).",
            ),
            &["result"],
        );
        let refusals = IntCounterVec::new(
            Opts::new(
                "sluice_refusals_total",
                "Requests refused by the front-door stages, by reason.",
            ),
            &["reason"],
        );
        let client_connections = prometheus::IntGauge::new(
            "sluice_client_connections",
            "Client connections open on the proxy listener.",
        );
        let header_timeouts = prometheus::IntCounter::new(
            "sluice_header_timeouts_total",
            "Connections closed because a request header did not arrive in time.",
        );
        let tls_certificates_served = IntCounterVec::new(
            Opts::new(
                "sluice_tls_certificates_served_total",
                "TLS handshakes given their certificate (ok) or not (error).",
            ),
            &["result"],
        );
        // The names and label sets above are constants; registering them into a fresh
        // registry cannot collide.
        #[allow(clippy::expect_used)]
        let metrics = (|| -> prometheus::Result<Self> {
            let requests = requests?;
            let request_duration = request_duration?;
            let upstream_requests = upstream_requests?;
            let upstream_healthy = upstream_healthy?;
            let retries = retries?;
            let config_reloads = config_reloads?;
            let ratelimit_decisions = ratelimit_decisions?;
            let auth_failures = auth_failures?;
            let breaker_state = breaker_state?;
            let breaker_transitions = breaker_transitions?;
            let hedges = hedges?;
            let kafka_events = kafka_events?;
            let kafka_queue_depth = kafka_queue_depth?;
            let access_log_lines = access_log_lines?;
            let refusals = refusals?;
            let client_connections = client_connections?;
            let header_timeouts = header_timeouts?;
            let tls_certificates_served = tls_certificates_served?;
            registry.register(Box::new(requests.clone()))?;
            registry.register(Box::new(request_duration.clone()))?;
            registry.register(Box::new(upstream_requests.clone()))?;
            registry.register(Box::new(upstream_healthy.clone()))?;
            registry.register(Box::new(retries.clone()))?;
            registry.register(Box::new(config_reloads.clone()))?;
            registry.register(Box::new(ratelimit_decisions.clone()))?;
            registry.register(Box::new(auth_failures.clone()))?;
            registry.register(Box::new(breaker_state.clone()))?;
            registry.register(Box::new(breaker_transitions.clone()))?;
            registry.register(Box::new(hedges.clone()))?;
            registry.register(Box::new(kafka_events.clone()))?;
            registry.register(Box::new(kafka_queue_depth.clone()))?;
            registry.register(Box::new(access_log_lines.clone()))?;
            registry.register(Box::new(refusals.clone()))?;
            registry.register(Box::new(client_connections.clone()))?;
            registry.register(Box::new(header_timeouts.clone()))?;
            registry.register(Box::new(tls_certificates_served.clone()))?;
            // CPU, memory, open fds of this process (System Overview dashboard).
            #[cfg(target_os = "linux")]
            registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))?;
            // Known reasons start at 0, so a rate over them is 0, not "no data".
            for reason in [
                "ip_denied",
                "cors_denied",
                "body_too_large",
                "too_many_headers",
                "headers_too_large",
                "ambiguous_length",
            ] {
                refusals.with_label_values(&[reason]);
            }
            Ok(Self {
                registry: registry.clone(),
                requests,
                request_duration,
                upstream_requests,
                upstream_healthy,
                retries,
                config_reloads,
                ratelimit_decisions,
                auth_failures,
                breaker_state,
                breaker_transitions,
                hedges,
                kafka_events,
                kafka_queue_depth,
                access_log_lines,
                refusals,
                client_connections,
                header_timeouts,
                tls_certificates_served,
            })
        })()
        .expect("static metric definitions are valid");
        metrics
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The label for an HTTP status without formatting on the request path ("0" when no
/// response was written).
pub fn status_label(status: u16) -> &'static str {
    static LABELS: OnceLock<Vec<String>> = OnceLock::new();
    let labels = LABELS.get_or_init(|| (0..600).map(|code| code.to_string()).collect());
    labels
        .get(usize::from(status))
        .map_or("other", String::as_str)
}
