//! The YAML file as written: plain serde structs, no meaning attached yet.
//!
//! Unknown fields are not rejected by serde here (`deny_unknown_fields` stops at the first
//! one); `load` collects every ignored field through `serde_ignored` instead, so a file
//! with three typos gets three errors in one run.

use serde::Deserialize;
use std::collections::BTreeMap;

pub use super::raw_admin::RawAdmin;
pub use super::raw_edge::{RawTls, RawUpstreamTls};

/// The whole configuration file.
#[derive(Debug, Deserialize)]
pub struct RawConfig {
    /// Listeners and process settings.
    pub server: RawServer,
    /// Upstream groups by name.
    #[serde(default)]
    pub upstreams: BTreeMap<String, RawUpstream>,
    /// Routes, matched by host and longest path prefix.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Redis, for API keys and token buckets.
    #[serde(default)]
    pub redis: Option<RawRedis>,
    /// Admin API settings.
    #[serde(default)]
    pub admin: RawAdmin,
    /// Rate tiers by name; the seed tiers when absent.
    #[serde(default)]
    pub tiers: Option<BTreeMap<String, RawTier>>,
    /// Rate limiter behaviour.
    #[serde(default)]
    pub ratelimit: RawRateLimit,
    /// Request events to Kafka; without it events are not produced.
    #[serde(default)]
    pub kafka: Option<RawKafka>,
    /// One line per request to a file; off when absent.
    #[serde(default)]
    pub access_log: Option<RawAccessLog>,
}

/// `access_log:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    /// The file (appended to; created if missing).
    pub path: String,
    /// `json` (default) or `combined` (Apache/nginx).
    #[serde(default)]
    pub format: Option<String>,
    /// Lines waiting for the writer before new ones are dropped (and counted).
    #[serde(default = "default_access_log_queue")]
    pub queue_capacity: usize,
}

/// `kafka:` section.
#[derive(Debug, Deserialize)]
pub struct RawKafka {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Topic for request events.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Events held in sluice's queue (and in librdkafka's) while the broker is away.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// How long the producer waits to fill a batch.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// A folder for events that do not fit the queue (off when absent).
    #[serde(default)]
    pub spill_dir: Option<String>,
    /// The spill file's size limit, MiB.
    #[serde(default = "default_spill_max_mb")]
    pub spill_max_mb: u64,
    /// `none` (Kafka's lz4 batch compression) or `zstd` (each message value one zstd frame).
    #[serde(default = "default_value_compression")]
    pub value_compression: String,
}

fn default_value_compression() -> String {
    "none".into()
}

fn default_spill_max_mb() -> u64 {
    256
}

fn default_topic() -> String {
    "sluice.requests".into()
}
fn default_queue_capacity() -> usize {
    100_000
}
fn default_linger_ms() -> u64 {
    // Small batches cost the producer's broker thread ~37 µs per event here (linger 5 ms);
    // at 100 ms that cost all but disappears, and no request waits for it either way.
    100
}

/// `redis:` section.
#[derive(Debug, Deserialize)]
pub struct RawRedis {
    /// `redis://host:port[/db]` (or `cluster`).
    #[serde(default)]
    pub url: String,
    /// Seed nodes of a Redis Cluster (`redis://host:port` each), instead of `url`.
    #[serde(default)]
    pub cluster: Vec<String>,
    /// Longest a request waits for Redis before the fallback applies.
    #[serde(default = "default_redis_timeout_ms")]
    pub timeout_ms: u64,
}

/// One rate tier.
#[derive(Debug, Deserialize)]
pub struct RawTier {
    /// Sustained requests per second.
    pub rate_per_s: f64,
    /// Bucket size: requests allowed at once after a quiet period.
    pub burst: u64,
}

/// `ratelimit:` section.
#[derive(Debug, Deserialize)]
pub struct RawRateLimit {
    /// `local`, `open` or `closed`: what happens when Redis fails.
    #[serde(default = "default_on_redis_error")]
    pub on_redis_error: String,
    /// Instances sharing the limits; the local fallback allows rate / this each.
    #[serde(default = "default_expected_instances")]
    pub expected_instances: u32,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        Self {
            on_redis_error: default_on_redis_error(),
            expected_instances: default_expected_instances(),
        }
    }
}

/// `server:` section.
#[derive(Debug, Deserialize)]
pub struct RawServer {
    /// Proxy listener, `ip:port`.
    pub listen: String,
    /// Admin listener (metrics, health, admin API), `ip:port`.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// Pingora worker threads.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Seconds in-flight requests get to finish on SIGTERM.
    #[serde(default = "default_grace_period_s")]
    pub grace_period_s: u64,
    /// Add `X-Sluice-Upstream: <peer>` to responses.
    #[serde(default = "default_true")]
    pub upstream_header: bool,
    /// Each request header must arrive within this many ms of its first byte (of the
    /// connection, for the first request), or the connection is closed.
    #[serde(default = "default_client_header_timeout_ms")]
    pub client_header_timeout_ms: u64,
    /// Peers (load balancers, CDNs) whose `X-Forwarded-*` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The request header that tells upstreams which key was admitted.
    #[serde(default = "default_key_id_header")]
    pub key_id_header: String,
    /// The request header that tells upstreams the admitted key's tier.
    #[serde(default = "default_tier_header")]
    pub tier_header: String,
    /// The HTTPS listener; none when absent.
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// The plain listener also speaks HTTP/2 to clients that start with its preface
    /// (h2c with prior knowledge).
    #[serde(default)]
    pub h2c: bool,
}

/// One entry of `upstreams:`.
#[derive(Debug, Deserialize)]
pub struct RawUpstream {
    /// `host:port` of each peer.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Active HTTP health check.
    #[serde(default)]
    pub health_check: RawHealthCheck,
    /// How many other peers a request may be retried on after a connect failure.
    #[serde(default = "default_retries")]
    pub retries: usize,
    /// TCP connect timeout per attempt.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Timeout waiting for each read from the upstream.
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Per-peer circuit breaker.
    #[serde(default)]
    pub breaker: RawBreaker,
    /// Upstream statuses on which idempotent requests are retried on another peer.
    #[serde(default = "default_retry_on_status")]
    pub retry_on_status: Vec<u16>,
    /// `http1` (default), `h2` (HTTP/2 over TLS) or `h2c` (cleartext HTTP/2).
    #[serde(default)]
    pub protocol: Option<String>,
    /// TLS to the peers; none (cleartext) when absent.
    #[serde(default)]
    pub tls: Option<RawUpstreamTls>,
}

/// `breaker:` of an upstream.
#[derive(Debug, Deserialize)]
pub struct RawBreaker {
    /// Failure share (0..1] over the window that opens the breaker.
    #[serde(default = "default_failure_rate")]
    pub failure_rate: f64,
    /// Requests in the window before the failure rate counts.
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
    /// Rolling window length.
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// Failures in a row that open the breaker (0: off).
    #[serde(default = "default_consecutive_failures")]
    pub consecutive_failures: u32,
    /// How long an open breaker keeps the peer out.
    #[serde(default = "default_open_ms")]
    pub open_ms: u64,
    /// Requests let through when half-open.
    #[serde(default = "default_half_open_probes")]
    pub half_open_probes: u32,
    /// Statuses that count as failures.
    #[serde(default = "default_failure_statuses")]
    pub failure_statuses: Vec<u16>,
}

impl Default for RawBreaker {
    fn default() -> Self {
        Self {
            failure_rate: default_failure_rate(),
            min_requests: default_min_requests(),
            window_ms: default_window_ms(),
            consecutive_failures: default_consecutive_failures(),
            open_ms: default_open_ms(),
            half_open_probes: default_half_open_probes(),
            failure_statuses: default_failure_statuses(),
        }
    }
}

/// `retry_budget:` of a route.
#[derive(Debug, Deserialize)]
pub struct RawRetryBudget {
    /// Retries may be at most this share of the route's recent requests.
    #[serde(default = "default_budget_percent")]
    pub percent: f64,
    /// Retries always allowed per second, however few requests there are.
    #[serde(default = "default_min_retries_per_s")]
    pub min_per_s: f64,
}

impl Default for RawRetryBudget {
    fn default() -> Self {
        Self {
            percent: default_budget_percent(),
            min_per_s: default_min_retries_per_s(),
        }
    }
}

/// `health_check:` of an upstream.
#[derive(Debug, Deserialize)]
pub struct RawHealthCheck {
    /// Path requested with GET; any 2xx is healthy.
    #[serde(default = "default_health_path")]
    pub path: String,
    /// Time between two checks of one peer.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Connect + response timeout of one check.
    #[serde(default = "default_health_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive successes that make an unhealthy peer healthy.
    #[serde(default = "default_two")]
    pub healthy_after: usize,
    /// Consecutive failures that make a healthy peer unhealthy.
    #[serde(default = "default_two")]
    pub unhealthy_after: usize,
    /// `http` (default: GET `path`) or `grpc` (`grpc.health.v1.Health/Check`).
    #[serde(default)]
    pub kind: Option<String>,
    /// The service a gRPC check asks about (empty: the server as a whole).
    #[serde(default)]
    pub service: String,
}

impl Default for RawHealthCheck {
    fn default() -> Self {
        Self {
            path: default_health_path(),
            interval_ms: default_interval_ms(),
            timeout_ms: default_health_timeout_ms(),
            healthy_after: default_two(),
            unhealthy_after: default_two(),
            kind: None,
            service: String::new(),
        }
    }
}

/// One entry of `routes:`.
#[derive(Debug, Deserialize)]
pub struct RawRoute {
    /// Unique name, used in metrics and events.
    pub name: String,
    /// Only match requests for this host (port ignored); any host when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix; the longest matching prefix wins.
    pub path_prefix: String,
    /// Remove the prefix before forwarding (`/api/todos` -> `/todos`).
    #[serde(default)]
    pub strip_prefix: bool,
    /// Name of the upstream group.
    pub upstream: String,
    /// `none` (default) or `api_key`.
    #[serde(default)]
    pub auth: Option<String>,
    /// `off`, `key` (default with api_key auth) or `ip`.
    #[serde(default)]
    pub ratelimit: Option<String>,
    /// The tier applied per client IP when `ratelimit: ip`.
    #[serde(default)]
    pub ratelimit_tier: Option<String>,
    /// Bound on retries, so they cannot multiply an outage.
    #[serde(default)]
    pub retry_budget: RawRetryBudget,
    /// Hedged requests (a second attempt when the first is slow); off when absent.
    #[serde(default)]
    pub hedge: Option<RawHedge>,
    /// Forward the client's API key header to the upstream (off: it is removed, and the
    /// upstream gets the key id and tier instead).
    #[serde(default)]
    pub forward_credentials: bool,
    /// Only clients in these CIDR blocks are served (any, when empty).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Clients in these CIDR blocks are refused (before `allow`).
    #[serde(default)]
    pub deny: Vec<String>,
    /// The largest request body the route accepts, bytes (0: no limit).
    #[serde(default = "default_route_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Match `path_prefix` only at segment ends (`/api` matches `/api/x`, not `/apix`).
    #[serde(default)]
    pub whole_segments: bool,
    /// Cross-origin requests from browsers; off when absent.
    #[serde(default)]
    pub cors: Option<RawCors>,
    /// Response compression (gzip, brotli, zstd by `Accept-Encoding`); off when absent.
    #[serde(default)]
    pub compress: Option<RawCompress>,
    /// On the plain listener, answer 308 to the same URL on https (needs
    /// `server.tls.redirect_http`).
    #[serde(default)]
    pub redirect_https: bool,
    /// Send `Strict-Transport-Security: max-age=N` on responses over TLS.
    #[serde(default)]
    pub hsts_max_age_s: Option<u64>,
    /// Accept `Upgrade: websocket` (otherwise 400).
    #[serde(default)]
    pub websocket: bool,
    /// An upgraded connection silent this long in both directions is closed.
    #[serde(default = "default_websocket_idle_timeout_s")]
    pub websocket_idle_timeout_s: u64,
}

/// `compress:` of a route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompress {
    /// 1 (fastest) to 9 (smallest); brotli and zstd use it as their own level.
    #[serde(default = "default_compress_level")]
    pub level: u32,
    /// Smaller responses (by `Content-Length`) are sent as they are.
    #[serde(default = "default_compress_min_bytes")]
    pub min_bytes: u64,
    /// `Content-Type` prefixes that are compressed.
    #[serde(default = "default_compress_types")]
    pub types: Vec<String>,
}

/// `cors:` of a route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// `*`, `https://app.example.com`, `*.example.com` or `https://*.example.com`.
    pub origins: Vec<String>,
    /// Methods browsers may use.
    #[serde(default = "default_cors_methods")]
    pub methods: Vec<String>,
    /// Request headers browsers may send.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Response headers scripts may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Allow cookies and credentials (then `origins` must not be `*`).
    #[serde(default)]
    pub credentials: bool,
    /// How long browsers may cache a preflight's answer, seconds.
    #[serde(default = "default_cors_max_age_s")]
    pub max_age_s: u64,
}

/// `hedge:` of a route.
#[derive(Debug, Deserialize)]
pub struct RawHedge {
    /// `p95` (the upstream's recent 95th percentile) or a fixed number of milliseconds.
    #[serde(default = "default_hedge_delay")]
    pub delay: RawDelay,
    /// Floor of the adaptive delay.
    #[serde(default = "default_min_delay_ms")]
    pub min_delay_ms: u64,
    /// Hedges at most this share (percent) of the route's requests.
    #[serde(default = "default_max_extra_percent")]
    pub max_extra_percent: f64,
    /// Requests with larger bodies are not hedged.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
}

/// A hedge delay as written: `p95` or milliseconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDelay {
    /// Fixed milliseconds.
    Ms(u64),
    /// `p95`.
    Text(String),
}

fn default_hedge_delay() -> RawDelay {
    RawDelay::Text("p95".into())
}
fn default_min_delay_ms() -> u64 {
    2
}
fn default_max_extra_percent() -> f64 {
    10.0
}
fn default_max_body_bytes() -> u64 {
    64 * 1024
}

fn default_failure_rate() -> f64 {
    0.5
}
fn default_min_requests() -> u32 {
    20
}
fn default_window_ms() -> u64 {
    10_000
}
fn default_consecutive_failures() -> u32 {
    5
}
fn default_open_ms() -> u64 {
    5000
}
fn default_half_open_probes() -> u32 {
    3
}
fn default_failure_statuses() -> Vec<u16> {
    vec![500, 502, 503, 504]
}
fn default_retry_on_status() -> Vec<u16> {
    vec![502, 503]
}
fn default_budget_percent() -> f64 {
    20.0
}
fn default_min_retries_per_s() -> f64 {
    10.0
}
fn default_redis_timeout_ms() -> u64 {
    20
}
fn default_on_redis_error() -> String {
    "local".into()
}
fn default_expected_instances() -> u32 {
    1
}
fn default_admin_listen() -> String {
    "127.0.0.1:9901".into()
}
fn default_threads() -> usize {
    2
}
fn default_compress_level() -> u32 {
    5
}

fn default_compress_min_bytes() -> u64 {
    1024
}

fn default_compress_types() -> Vec<String> {
    [
        "text/",
        "application/json",
        "application/javascript",
        "application/xml",
        "image/svg+xml",
    ]
    .map(String::from)
    .to_vec()
}

fn default_access_log_queue() -> usize {
    65_536
}

fn default_cors_methods() -> Vec<String> {
    ["GET", "HEAD", "POST"].map(String::from).to_vec()
}

fn default_cors_max_age_s() -> u64 {
    600
}

fn default_route_max_body_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_key_id_header() -> String {
    "x-sluice-key-id".into()
}

fn default_tier_header() -> String {
    "x-sluice-tier".into()
}

fn default_websocket_idle_timeout_s() -> u64 {
    60
}

fn default_client_header_timeout_ms() -> u64 {
    10_000
}

fn default_grace_period_s() -> u64 {
    10
}
fn default_true() -> bool {
    true
}
fn default_retries() -> usize {
    2
}
fn default_connect_timeout_ms() -> u64 {
    1000
}
fn default_read_timeout_ms() -> u64 {
    30_000
}
fn default_health_path() -> String {
    "/health".into()
}
fn default_interval_ms() -> u64 {
    1000
}
fn default_health_timeout_ms() -> u64 {
    300
}
fn default_two() -> usize {
    2
}
