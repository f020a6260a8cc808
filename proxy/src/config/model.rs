//! The validated configuration: what the rest of sluice reads. Built only by
//! [`super::validate`], never by hand from YAML, so every value here has passed its rules
//! and defaults are already resolved.

pub use super::cors::{CorsConfig, OriginPattern};
use crate::net::cidr::{any_contains, Cidr};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A validated configuration. Immutable; a reload builds a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from.
    pub source: PathBuf,
    /// The file's text, as validated (for `GET /admin/config`).
    pub text: String,
    /// Listener and process settings.
    pub server: ServerConfig,
    /// Upstream groups by name.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes in file order (matching order is decided by the router).
    pub routes: Vec<RouteConfig>,
    /// Redis, when keys or rate limits are used.
    pub redis: Option<RedisConfig>,
    /// Admin API settings.
    pub admin: AdminConfig,
    /// Rate tiers by name.
    pub tiers: BTreeMap<String, Tier>,
    /// Rate limiter behaviour.
    pub ratelimit: RateLimitConfig,
    /// Kafka, when request events are produced.
    pub kafka: Option<KafkaConfig>,
    /// The access log, when on.
    pub access_log: Option<AccessLogConfig>,
    /// What is worth a look but does not stop the config serving (an expired
    /// certificate), each pinned like an error.
    pub warnings: Vec<super::error::ConfigError>,
    /// Longest a request waits for Redis: `redis.timeout_ms`, or a default when there is
    /// no `redis:` section (then nothing asks Redis and every wait ends in the fallback).
    pub redis_timeout: Duration,
}

/// Validated `access_log:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogConfig {
    /// The file.
    pub path: PathBuf,
    /// The line format.
    pub format: AccessLogFormat,
    /// Lines queued for the writer at most.
    pub queue_capacity: usize,
}

/// How access log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// The Apache/nginx combined format.
    Combined,
}

/// Validated `kafka:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConfig {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// Queue capacity (sluice's channel, and librdkafka's queue).
    pub queue_capacity: usize,
    /// Producer linger.
    pub linger_ms: u64,
    /// Where events that do not fit the queue wait, if anywhere.
    pub spill_dir: Option<std::path::PathBuf>,
    /// The spill file's size limit in bytes.
    pub spill_max_bytes: u64,
    /// How message values are written.
    pub value_compression: sluice_event::ValueCompression,
}

/// Validated `redis:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    /// Connection URL (empty with `cluster`).
    pub url: String,
    /// Seed nodes of a Redis Cluster; empty for one server.
    pub cluster: Vec<String>,
    /// Longest a request waits for Redis.
    pub timeout: Duration,
}

/// Validated `admin:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdminConfig {
    /// SHA-256 of the admin bearer token; `None` disables the admin API.
    pub token_sha256: Option<[u8; 32]>,
    /// How long a dashboard session lasts after sign-in.
    pub session_ttl: Duration,
    /// The analytics service's base URL, without a trailing `/`.
    pub analytics_url: Option<String>,
}

/// A rate tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tier {
    /// Sustained requests per second.
    pub rate_per_s: f64,
    /// Bucket size.
    pub burst: u64,
}

/// What the rate limiter does when Redis fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRedisError {
    /// An in-process bucket at rate / expected_instances.
    Local,
    /// Allow every request.
    Open,
    /// Answer 503.
    Closed,
}

impl OnRedisError {
    /// The config spelling, also the `mode` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// Validated `ratelimit:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    /// Behaviour when Redis fails.
    pub on_redis_error: OnRedisError,
    /// Instances sharing the limits.
    pub expected_instances: u32,
}

/// How a route authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Anyone.
    None,
    /// An API key in `X-API-Key` or `Authorization: Bearer`.
    ApiKey,
}

/// How a route is rate-limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitMode {
    /// Not limited.
    Off,
    /// Per API key, at the key's tier.
    Key,
    /// Per client IP, at the named tier.
    Ip {
        /// Tier name.
        tier: String,
    },
}

/// Validated `server:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Proxy listener.
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Pingora worker threads.
    pub threads: usize,
    /// Grace period for in-flight requests on shutdown.
    pub grace_period: Duration,
    /// Whether responses carry `X-Sluice-Upstream`.
    pub upstream_header: bool,
    /// The deadline on each request header (slowloris).
    pub client_header_timeout: Duration,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Request header carrying the admitted key's id to upstreams.
    pub key_id_header: http::HeaderName,
    /// Request header carrying the admitted key's tier to upstreams.
    pub tier_header: http::HeaderName,
    /// The HTTPS listener, when configured.
    pub tls: Option<TlsConfig>,
    /// Whether the plain listener accepts HTTP/2 with prior knowledge.
    pub h2c: bool,
}

/// The oldest TLS version the HTTPS listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// Validated `server.tls`.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// Its address.
    pub listen: SocketAddr,
    /// The certificates, read and checked; chosen per handshake by SNI.
    pub certificates: std::sync::Arc<crate::tls::CertStore>,
    /// The oldest version accepted.
    pub min_version: TlsVersion,
    /// Whether routes with `redirect_https` redirect plain requests.
    pub redirect_http: bool,
}

/// A validated upstream group.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// Peer addresses, resolved.
    pub peers: Vec<SocketAddr>,
    /// Active health check settings.
    pub health_check: HealthCheckConfig,
    /// Extra attempts on other peers after a connect failure.
    pub retries: usize,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Per-read timeout.
    pub read_timeout: Duration,
    /// Per-peer circuit breaker settings.
    pub breaker: BreakerConfig,
    /// Statuses on which idempotent requests are retried elsewhere.
    pub retry_on_status: Vec<u16>,
    /// What the peers speak.
    pub protocol: UpstreamProtocol,
    /// TLS to the peers, when on.
    pub tls: Option<UpstreamTls>,
}

/// What an upstream group's peers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (over TLS when the group has `tls`).
    Http1,
    /// HTTP/2 over TLS (ALPN h2).
    H2,
    /// Cleartext HTTP/2 with prior knowledge.
    H2c,
}

/// TLS to a group's peers.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamTls {
    /// SNI, and the name the peer's certificate must carry.
    pub sni: String,
    /// Whether the chain and name are verified.
    pub verify: bool,
    /// CAs trusted instead of the system's.
    pub ca: Option<super::ca_certs::CaCerts>,
}

/// How a peer's health is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// GET `path`; any 2xx is healthy.
    Http,
    /// `grpc.health.v1.Health/Check` for `service`; `SERVING` is healthy.
    Grpc {
        /// The service asked about (empty: the whole server).
        service: String,
    },
}

/// Validated breaker settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Failure share that opens the breaker.
    pub failure_rate: f64,
    /// Requests in the window before the rate counts.
    pub min_requests: u32,
    /// Rolling window.
    pub window: Duration,
    /// Failures in a row that open it (0: off).
    pub consecutive_failures: u32,
    /// Open period.
    pub open: Duration,
    /// Half-open probes.
    pub half_open_probes: u32,
    /// Statuses counted as failures.
    pub failure_statuses: Vec<u16>,
}

/// Validated retry budget.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryBudgetConfig {
    /// Retries as a share (percent) of recent requests.
    pub percent: f64,
    /// Retries always allowed per second.
    pub min_per_s: f64,
}

/// A validated health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckConfig {
    /// Path requested with GET.
    pub path: String,
    /// Time between checks.
    pub interval: Duration,
    /// Timeout of one check.
    pub timeout: Duration,
    /// Successes needed to become healthy.
    pub healthy_after: usize,
    /// Failures needed to become unhealthy.
    pub unhealthy_after: usize,
    /// HTTP or gRPC.
    pub kind: HealthCheckKind,
}

/// A validated route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// Unique name.
    pub name: String,
    /// Host to match, lower-case, without port.
    pub host: Option<String>,
    /// Path prefix, starting with '/'.
    pub path_prefix: String,
    /// Whether the prefix is removed before forwarding.
    pub strip_prefix: bool,
    /// Upstream group name (known to exist).
    pub upstream: String,
    /// Authentication.
    pub auth: AuthMode,
    /// Rate limiting.
    pub ratelimit: RateLimitMode,
    /// Retry budget.
    pub retry_budget: RetryBudgetConfig,
    /// Hedging, when on.
    pub hedge: Option<HedgeConfig>,
    /// Whether the client's API key header reaches the upstream.
    pub forward_credentials: bool,
    /// Which client addresses the route serves.
    pub ip_rules: IpRules,
    /// The largest request body accepted (`None`: no limit).
    pub max_body_bytes: Option<u64>,
    /// The prefix matches only at segment ends.
    pub whole_segments: bool,
    /// The CORS policy, when on.
    pub cors: Option<CorsConfig>,
    /// Response compression, when on.
    pub compress: Option<CompressConfig>,
    /// Plain requests get a 308 to https (when `server.tls.redirect_http`).
    pub redirect_https: bool,
    /// `Strict-Transport-Security` for responses over TLS.
    pub hsts: Option<http::HeaderValue>,
    /// WebSocket upgrades are accepted, with this idle timeout; refused when `None`.
    pub websocket_idle: Option<Duration>,
}

/// Validated `compress:` of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressConfig {
    /// 1..=9.
    pub level: u32,
    /// Smaller responses are not compressed.
    pub min_bytes: u64,
    /// `Content-Type` prefixes compressed (lower case).
    pub types: Vec<String>,
}

/// A route's client address rules: `deny` first, then `allow` (when not empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpRules {
    /// Served only when in one of these (everyone, when empty).
    pub allow: Vec<Cidr>,
    /// Refused when in one of these.
    pub deny: Vec<Cidr>,
}

impl IpRules {
    /// Whether rules apply at all (so the client address need not be looked at).
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether a client at `ip` is served; an unknown address only on an open route.
    pub fn admits(&self, ip: Option<IpAddr>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(ip) = ip else {
            return false;
        };
        !any_contains(&self.deny, ip) && (self.allow.is_empty() || any_contains(&self.allow, ip))
    }
}

/// When the hedge is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeDelay {
    /// After a fixed time.
    Fixed(Duration),
    /// After the upstream's recent p95 (or the floor, when higher or unknown).
    P95,
}

/// Validated hedge settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HedgeConfig {
    /// When the second attempt goes out.
    pub delay: HedgeDelay,
    /// Floor of the adaptive delay.
    pub min_delay: Duration,
    /// Hedges as a share (percent) of the route's requests.
    pub max_extra_percent: f64,
    /// Larger request bodies are not hedged.
    pub max_body_bytes: u64,
}
