//! Raw structs -> [`Config`]: every rule checked, every failure collected.

use super::error::{ConfigError, ConfigErrors};
use super::lines::LineIndex;
use super::raw::{
    RawAdmin, RawBreaker, RawConfig, RawDelay, RawHealthCheck, RawHedge, RawKafka, RawRateLimit,
    RawRedis, RawRetryBudget, RawRoute, RawServer, RawTier, RawUpstream,
};
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
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

fn kafka(raw: &RawKafka, errors: &mut Errors<'_>) -> KafkaConfig {
    if raw.brokers.trim().is_empty() {
        errors.push("kafka.brokers", "must name at least one host:port");
    }
    if raw.topic.is_empty() || raw.topic.len() > 249 {
        errors.push("kafka.topic", "must be 1 to 249 characters");
    }
    if raw.queue_capacity == 0 || raw.queue_capacity > 10_000_000 {
        errors.push("kafka.queue_capacity", "must be from 1 to 10000000");
    }
    if raw
        .spill_dir
        .as_deref()
        .is_some_and(|d| d.trim().is_empty())
    {
        errors.push(
            "kafka.spill_dir",
            "must be a folder path (leave it out to spill nothing)",
        );
    }
    if raw.spill_max_mb == 0 || raw.spill_max_mb > 1_048_576 {
        errors.push("kafka.spill_max_mb", "must be from 1 to 1048576");
    }
    let value_compression = match raw.value_compression.as_str() {
        "none" => sluice_event::ValueCompression::None,
        "zstd" => sluice_event::ValueCompression::Zstd,
        other => {
            errors.push(
                "kafka.value_compression",
                format!("must be none or zstd, got \"{other}\""),
            );
            sluice_event::ValueCompression::None
        }
    };
    KafkaConfig {
        brokers: raw.brokers.clone(),
        topic: raw.topic.clone(),
        queue_capacity: raw.queue_capacity,
        linger_ms: raw.linger_ms,
        spill_dir: raw.spill_dir.as_ref().map(std::path::PathBuf::from),
        spill_max_bytes: raw.spill_max_mb.saturating_mul(1 << 20),
        value_compression,
    }
}

/// Validated `redis:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    /// Connection URL.
    pub url: String,
    /// Longest a request waits for Redis.
    pub timeout: Duration,
}

/// Validated `admin:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdminConfig {
    /// SHA-256 of the admin bearer token; `None` disables the admin API.
    pub token_sha256: Option<[u8; 32]>,
}

/// A rate tier.
#[derive(Debug, Clone, PartialEq)]
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

/// Collects errors with their lines while validation walks the raw structs.
pub struct Errors<'a> {
    file: &'a Path,
    lines: &'a LineIndex,
    found: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    /// An empty collector for `file`.
    pub fn new(file: &'a Path, lines: &'a LineIndex) -> Self {
        Self {
            file,
            lines,
            found: Vec::new(),
        }
    }

    /// Records `message` against `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.found.push(ConfigError {
            file: self.file.to_path_buf(),
            line: self.lines.line_of(field),
            field: field.to_string(),
            message: message.into(),
        });
    }
}

/// Checks every rule; returns the config only when none failed.
pub fn validate(
    file: &Path,
    raw: RawConfig,
    mut errors: Errors<'_>,
) -> Result<Config, ConfigErrors> {
    let server = server(&raw.server, &mut errors);
    let upstreams: BTreeMap<String, UpstreamConfig> = raw
        .upstreams
        .iter()
        .filter_map(|(name, up)| Some((name.clone(), upstream(name, up, &mut errors)?)))
        .collect();
    let redis = raw.redis.as_ref().and_then(|r| redis(r, &mut errors));
    let admin = admin(&raw.admin, &mut errors);
    let tiers = tiers(raw.tiers.as_ref(), &mut errors);
    let ratelimit = ratelimit(&raw.ratelimit, &mut errors);
    let kafka = raw.kafka.as_ref().map(|k| kafka(k, &mut errors));
    let routes = routes(
        &raw.routes,
        &raw.upstreams,
        &tiers,
        redis.is_some(),
        &mut errors,
    );

    if !errors.found.is_empty() {
        errors.found.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        return Err(ConfigErrors(errors.found));
    }
    match server {
        Some(server) => Ok(Config {
            source: file.to_path_buf(),
            text: String::new(),
            server,
            upstreams,
            routes,
            redis,
            admin,
            tiers,
            ratelimit,
            kafka,
        }),
        None => Err(ConfigErrors::whole_file(
            file,
            None,
            "invalid server section",
        )),
    }
}

fn socket_addr(text: &str, field: &str, errors: &mut Errors<'_>) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    match text.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(addr)) => Some(addr),
        Ok(None) => {
            errors.push(field, format!("\"{text}\" resolves to no address"));
            None
        }
        Err(_) => {
            errors.push(
                field,
                format!("\"{text}\" is not a host:port address (e.g. 127.0.0.1:8081)"),
            );
            None
        }
    }
}

fn server(raw: &RawServer, errors: &mut Errors<'_>) -> Option<ServerConfig> {
    let listen = socket_addr(&raw.listen, "server.listen", errors);
    let admin_listen = socket_addr(&raw.admin_listen, "server.admin_listen", errors);
    if raw.threads == 0 {
        errors.push("server.threads", "must be at least 1");
    }
    if listen.is_some() && listen == admin_listen {
        errors.push("server.admin_listen", "must differ from server.listen");
    }
    Some(ServerConfig {
        listen: listen?,
        admin_listen: admin_listen?,
        threads: raw.threads.max(1),
        grace_period: Duration::from_secs(raw.grace_period_s),
        upstream_header: raw.upstream_header,
    })
}

fn upstream(name: &str, raw: &RawUpstream, errors: &mut Errors<'_>) -> Option<UpstreamConfig> {
    let base = format!("upstreams.{name}");
    if raw.peers.is_empty() {
        errors.push(&format!("{base}.peers"), "must list at least one peer");
    }
    let mut peers = Vec::with_capacity(raw.peers.len());
    let mut seen = HashSet::new();
    for (i, text) in raw.peers.iter().enumerate() {
        let field = format!("{base}.peers[{i}]");
        if let Some(addr) = socket_addr(text, &field, errors) {
            if seen.insert(addr) {
                peers.push(addr);
            } else {
                errors.push(&field, format!("duplicate peer {addr}"));
            }
        }
    }
    if raw.connect_timeout_ms == 0 {
        errors.push(
            &format!("{base}.connect_timeout_ms"),
            "must be greater than 0",
        );
    }
    if raw.read_timeout_ms == 0 {
        errors.push(&format!("{base}.read_timeout_ms"), "must be greater than 0");
    }
    let health_check = health_check(&format!("{base}.health_check"), &raw.health_check, errors);
    let breaker = breaker(&format!("{base}.breaker"), &raw.breaker, errors);
    for (i, status) in raw.retry_on_status.iter().enumerate() {
        if !(500..=599).contains(status) {
            errors.push(
                &format!("{base}.retry_on_status[{i}]"),
                "must be a 5xx status",
            );
        }
    }
    Some(UpstreamConfig {
        peers,
        health_check,
        retries: raw.retries,
        connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
        read_timeout: Duration::from_millis(raw.read_timeout_ms),
        breaker,
        retry_on_status: raw.retry_on_status.clone(),
    })
}

fn breaker(base: &str, raw: &RawBreaker, errors: &mut Errors<'_>) -> BreakerConfig {
    if !(raw.failure_rate > 0.0 && raw.failure_rate <= 1.0) {
        errors.push(
            &format!("{base}.failure_rate"),
            "must be greater than 0 and at most 1",
        );
    }
    if raw.min_requests == 0 {
        errors.push(&format!("{base}.min_requests"), "must be at least 1");
    }
    if raw.window_ms < 100 {
        errors.push(&format!("{base}.window_ms"), "must be at least 100");
    }
    if raw.open_ms == 0 {
        errors.push(&format!("{base}.open_ms"), "must be greater than 0");
    }
    if raw.half_open_probes == 0 {
        errors.push(&format!("{base}.half_open_probes"), "must be at least 1");
    }
    for (i, status) in raw.failure_statuses.iter().enumerate() {
        if !(100..=599).contains(status) {
            errors.push(
                &format!("{base}.failure_statuses[{i}]"),
                "must be an HTTP status",
            );
        }
    }
    BreakerConfig {
        failure_rate: raw.failure_rate,
        min_requests: raw.min_requests.max(1),
        window: Duration::from_millis(raw.window_ms.max(100)),
        consecutive_failures: raw.consecutive_failures,
        open: Duration::from_millis(raw.open_ms.max(1)),
        half_open_probes: raw.half_open_probes.max(1),
        failure_statuses: raw.failure_statuses.clone(),
    }
}

fn hedge(base: &str, raw: &RawHedge, errors: &mut Errors<'_>) -> HedgeConfig {
    let delay = match &raw.delay {
        RawDelay::Ms(0) => {
            errors.push(&format!("{base}.hedge.delay"), "must be greater than 0 ms");
            HedgeDelay::P95
        }
        RawDelay::Ms(ms) => HedgeDelay::Fixed(Duration::from_millis(*ms)),
        RawDelay::Text(t) if t == "p95" => HedgeDelay::P95,
        RawDelay::Text(t) => {
            errors.push(
                &format!("{base}.hedge.delay"),
                format!("must be p95 or a number of milliseconds, got \"{t}\""),
            );
            HedgeDelay::P95
        }
    };
    if !(raw.max_extra_percent > 0.0 && raw.max_extra_percent <= 100.0) {
        errors.push(
            &format!("{base}.hedge.max_extra_percent"),
            "must be greater than 0 and at most 100",
        );
    }
    HedgeConfig {
        delay,
        min_delay: Duration::from_millis(raw.min_delay_ms),
        max_extra_percent: raw.max_extra_percent.clamp(0.0, 100.0),
        max_body_bytes: raw.max_body_bytes,
    }
}

fn retry_budget(base: &str, raw: &RawRetryBudget, errors: &mut Errors<'_>) -> RetryBudgetConfig {
    if !(raw.percent >= 0.0 && raw.percent <= 100.0) {
        errors.push(
            &format!("{base}.retry_budget.percent"),
            "must be from 0 to 100",
        );
    }
    if !(raw.min_per_s >= 0.0 && raw.min_per_s.is_finite()) {
        errors.push(
            &format!("{base}.retry_budget.min_per_s"),
            "must be 0 or more",
        );
    }
    RetryBudgetConfig {
        percent: raw.percent.clamp(0.0, 100.0),
        min_per_s: raw.min_per_s.max(0.0),
    }
}

fn health_check(base: &str, raw: &RawHealthCheck, errors: &mut Errors<'_>) -> HealthCheckConfig {
    if !raw.path.starts_with('/') {
        errors.push(&format!("{base}.path"), "must start with '/'");
    }
    if raw.interval_ms < 50 {
        errors.push(&format!("{base}.interval_ms"), "must be at least 50");
    }
    if raw.timeout_ms == 0 {
        errors.push(&format!("{base}.timeout_ms"), "must be greater than 0");
    }
    if raw.healthy_after == 0 {
        errors.push(&format!("{base}.healthy_after"), "must be at least 1");
    }
    if raw.unhealthy_after == 0 {
        errors.push(&format!("{base}.unhealthy_after"), "must be at least 1");
    }
    HealthCheckConfig {
        path: raw.path.clone(),
        interval: Duration::from_millis(raw.interval_ms),
        timeout: Duration::from_millis(raw.timeout_ms),
        healthy_after: raw.healthy_after.max(1),
        unhealthy_after: raw.unhealthy_after.max(1),
    }
}

fn redis(raw: &RawRedis, errors: &mut Errors<'_>) -> Option<RedisConfig> {
    if !(raw.url.starts_with("redis://") || raw.url.starts_with("rediss://")) {
        errors.push(
            "redis.url",
            "must start with redis:// (e.g. redis://127.0.0.1:6379)",
        );
        return None;
    }
    if raw.timeout_ms == 0 {
        errors.push("redis.timeout_ms", "must be greater than 0");
    }
    Some(RedisConfig {
        url: raw.url.clone(),
        timeout: Duration::from_millis(raw.timeout_ms.max(1)),
    })
}

fn admin(raw: &RawAdmin, errors: &mut Errors<'_>) -> AdminConfig {
    let token_sha256 = match raw.token_sha256.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(text, &mut hash).is_ok() {
                Some(hash)
            } else {
                errors.push(
                    "admin.token_sha256",
                    "must be 64 hex digits (sha256sum of the token)",
                );
                None
            }
        }
    };
    AdminConfig { token_sha256 }
}

/// The tiers every install starts with.
fn seed_tiers() -> BTreeMap<String, Tier> {
    [
        ("free", 10.0, 100),
        ("pro", 100.0, 1000),
        ("enterprise", 1000.0, 10_000),
    ]
    .into_iter()
    .map(|(name, rate_per_s, burst)| (name.to_string(), Tier { rate_per_s, burst }))
    .collect()
}

fn tiers(
    raw: Option<&BTreeMap<String, RawTier>>,
    errors: &mut Errors<'_>,
) -> BTreeMap<String, Tier> {
    let Some(raw) = raw else { return seed_tiers() };
    let mut tiers = BTreeMap::new();
    for (name, tier) in raw {
        let base = format!("tiers.{name}");
        if !(tier.rate_per_s.is_finite() && tier.rate_per_s > 0.0) {
            errors.push(
                &format!("{base}.rate_per_s"),
                "must be a number greater than 0",
            );
            continue;
        }
        if tier.burst == 0 {
            errors.push(&format!("{base}.burst"), "must be at least 1");
            continue;
        }
        tiers.insert(
            name.clone(),
            Tier {
                rate_per_s: tier.rate_per_s,
                burst: tier.burst,
            },
        );
    }
    tiers
}

fn ratelimit(raw: &RawRateLimit, errors: &mut Errors<'_>) -> RateLimitConfig {
    let on_redis_error = match raw.on_redis_error.as_str() {
        "local" => OnRedisError::Local,
        "open" => OnRedisError::Open,
        "closed" => OnRedisError::Closed,
        other => {
            errors.push(
                "ratelimit.on_redis_error",
                format!("must be local, open or closed, got \"{other}\""),
            );
            OnRedisError::Local
        }
    };
    if raw.expected_instances == 0 {
        errors.push("ratelimit.expected_instances", "must be at least 1");
    }
    RateLimitConfig {
        on_redis_error,
        expected_instances: raw.expected_instances.max(1),
    }
}

fn auth_mode(base: &str, route: &RawRoute, has_redis: bool, errors: &mut Errors<'_>) -> AuthMode {
    match route.auth.as_deref() {
        None | Some("none") => AuthMode::None,
        Some("api_key") => {
            if !has_redis {
                errors.push(
                    &format!("{base}.auth"),
                    "api_key needs a redis: section (keys live in Redis)",
                );
            }
            AuthMode::ApiKey
        }
        Some(other) => {
            errors.push(
                &format!("{base}.auth"),
                format!("must be none or api_key, got \"{other}\""),
            );
            AuthMode::None
        }
    }
}

fn ratelimit_mode(
    base: &str,
    route: &RawRoute,
    auth: AuthMode,
    tiers: &BTreeMap<String, Tier>,
    has_redis: bool,
    errors: &mut Errors<'_>,
) -> RateLimitMode {
    let field = format!("{base}.ratelimit");
    let mode = match (route.ratelimit.as_deref(), auth) {
        (None, AuthMode::ApiKey) | (Some("key"), AuthMode::ApiKey) => RateLimitMode::Key,
        (None, AuthMode::None) | (Some("off"), _) => RateLimitMode::Off,
        (Some("key"), AuthMode::None) => {
            errors.push(
                &field,
                "key needs auth: api_key (use ip to limit anonymous clients)",
            );
            RateLimitMode::Off
        }
        (Some("ip"), _) => match route.ratelimit_tier.as_deref() {
            Some(tier) if tiers.contains_key(tier) => RateLimitMode::Ip {
                tier: tier.to_string(),
            },
            Some(tier) => {
                let known: Vec<&str> = tiers.keys().map(String::as_str).collect();
                errors.push(
                    &format!("{base}.ratelimit_tier"),
                    format!("no tier named \"{tier}\" (known: {})", known.join(", ")),
                );
                RateLimitMode::Off
            }
            None => {
                errors.push(&field, "ip needs ratelimit_tier: <tier>");
                RateLimitMode::Off
            }
        },
        (Some(other), _) => {
            errors.push(&field, format!("must be off, key or ip, got \"{other}\""));
            RateLimitMode::Off
        }
    };
    if mode != RateLimitMode::Off && !has_redis {
        errors.push(&field, "rate limits need a redis: section");
    }
    mode
}

fn routes(
    raw: &[RawRoute],
    upstreams: &BTreeMap<String, RawUpstream>,
    tiers: &BTreeMap<String, Tier>,
    has_redis: bool,
    errors: &mut Errors<'_>,
) -> Vec<RouteConfig> {
    let mut names = HashSet::new();
    let mut matches = HashSet::new();
    let mut routes = Vec::with_capacity(raw.len());
    for (i, route) in raw.iter().enumerate() {
        let base = format!("routes[{i}]");
        if route.name.is_empty() {
            errors.push(&format!("{base}.name"), "must not be empty");
        } else if !names.insert(route.name.as_str()) {
            errors.push(
                &format!("{base}.name"),
                format!("duplicate route name \"{}\"", route.name),
            );
        }
        if !route.path_prefix.starts_with('/') {
            errors.push(&format!("{base}.path_prefix"), "must start with '/'");
        }
        let host = route.host.as_ref().map(|h| h.to_ascii_lowercase());
        if !matches.insert((host.clone(), route.path_prefix.clone())) {
            errors.push(
                &format!("{base}.path_prefix"),
                "another route already matches this host and prefix",
            );
        }
        if !upstreams.contains_key(&route.upstream) {
            let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
            errors.push(
                &format!("{base}.upstream"),
                format!(
                    "no upstream named \"{}\" (known: {})",
                    route.upstream,
                    known.join(", ")
                ),
            );
        }
        let auth = auth_mode(&base, route, has_redis, errors);
        let ratelimit = ratelimit_mode(&base, route, auth, tiers, has_redis, errors);
        routes.push(RouteConfig {
            name: route.name.clone(),
            host,
            path_prefix: route.path_prefix.clone(),
            strip_prefix: route.strip_prefix,
            upstream: route.upstream.clone(),
            auth,
            ratelimit,
            retry_budget: retry_budget(&base, &route.retry_budget, errors),
            hedge: route.hedge.as_ref().map(|h| hedge(&base, h, errors)),
        });
    }
    routes
}
