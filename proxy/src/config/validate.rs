//! Raw structs -> [`Config`]: every rule checked, every failure collected. Each rule works
//! on one section through a [`Scope`], which names its fields relative to the section, so
//! every error still says the full path (`routes[2].hedge.delay`) and its line.

use super::error::{ConfigError, ConfigErrors};
use super::lines::LineIndex;
use super::model::{
    AccessLogConfig, AccessLogFormat, AdminConfig, AuthMode, BreakerConfig, CompressConfig, Config,
    CorsConfig, HealthCheckConfig, HedgeConfig, HedgeDelay, IpRules, KafkaConfig, OnRedisError,
    OriginPattern, RateLimitConfig, RateLimitMode, RedisConfig, RetryBudgetConfig, RouteConfig,
    ServerConfig, Tier, UpstreamConfig,
};
use super::raw::{
    RawAccessLog, RawAdmin, RawBreaker, RawConfig, RawCors, RawDelay, RawHealthCheck, RawHedge,
    RawKafka, RawRateLimit, RawRedis, RawRetryBudget, RawRoute, RawServer, RawTier, RawUpstream,
};
use crate::net::cidr::Cidr;
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Redis wait when the config has no `redis:` section.
const NO_REDIS_TIMEOUT: Duration = Duration::from_millis(20);

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

    /// Records `message` against `field` (a full path such as `routes[2].upstream`).
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.found.push(ConfigError {
            file: self.file.to_path_buf(),
            line: self.lines.line_of(field),
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// A collector for the fields under `base` (e.g. `upstreams.todo`).
    pub fn scope(&mut self, base: impl Into<String>) -> Scope<'_, 'a> {
        Scope {
            errors: self,
            base: base.into(),
        }
    }
}

/// Errors of one section: fields are named relative to it, so a rule says
/// `errors.push("open_ms", ..)` and the error names `upstreams.todo.breaker.open_ms`.
pub struct Scope<'e, 'a> {
    errors: &'e mut Errors<'a>,
    base: String,
}

impl<'a> Scope<'_, 'a> {
    /// Records `message` against `field` of this section (`peers[0]`, `open_ms`).
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        let path = join(&self.base, field);
        self.errors.push(&path, message);
    }

    /// The section `sub` of this one.
    pub fn scope(&mut self, sub: &str) -> Scope<'_, 'a> {
        Scope {
            base: join(&self.base, sub),
            errors: self.errors,
        }
    }
}

/// `base` + `field` as a YAML path: `a.b`, `a[0]`.
fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_string()
    } else if field.starts_with('[') {
        format!("{base}{field}")
    } else {
        format!("{base}.{field}")
    }
}

/// Checks every rule; returns the config only when none failed.
pub fn validate(
    file: &Path,
    raw: RawConfig,
    mut errors: Errors<'_>,
) -> Result<Config, ConfigErrors> {
    let server = server(&raw.server, &mut errors.scope("server"));
    let upstreams: BTreeMap<String, UpstreamConfig> = raw
        .upstreams
        .iter()
        .filter_map(|(name, up)| {
            let config = upstream(up, &mut errors.scope(format!("upstreams.{name}")))?;
            Some((name.clone(), config))
        })
        .collect();
    let redis = raw
        .redis
        .as_ref()
        .and_then(|r| redis(r, &mut errors.scope("redis")));
    let admin = admin(&raw.admin, &mut errors.scope("admin"));
    let tiers = tiers(raw.tiers.as_ref(), &mut errors.scope("tiers"));
    let ratelimit = ratelimit(&raw.ratelimit, &mut errors.scope("ratelimit"));
    let kafka = raw
        .kafka
        .as_ref()
        .map(|k| kafka(k, &mut errors.scope("kafka")));
    let access_log = raw
        .access_log
        .as_ref()
        .map(|a| access_log(a, &mut errors.scope("access_log")));
    let routes = routes(
        &raw.routes,
        &raw.upstreams,
        &tiers,
        redis.is_some(),
        &mut errors.scope("routes"),
    );

    if !errors.found.is_empty() {
        errors.found.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        return Err(ConfigErrors(errors.found));
    }
    match server {
        Some(server) => Ok(Config {
            redis_timeout: redis.as_ref().map_or(NO_REDIS_TIMEOUT, |r| r.timeout),
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
            access_log,
        }),
        None => Err(ConfigErrors::whole_file(
            file,
            None,
            "invalid server section",
        )),
    }
}

fn socket_addr(text: &str, field: &str, errors: &mut Scope<'_, '_>) -> Option<SocketAddr> {
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

fn server(raw: &RawServer, errors: &mut Scope<'_, '_>) -> Option<ServerConfig> {
    let listen = socket_addr(&raw.listen, "listen", errors);
    let admin_listen = socket_addr(&raw.admin_listen, "admin_listen", errors);
    if raw.threads == 0 {
        errors.push("threads", "must be at least 1");
    }
    if raw.client_header_timeout_ms < 100 {
        errors.push("client_header_timeout_ms", "must be at least 100");
    }
    let key_id_header = header_name(&raw.key_id_header, "key_id_header", errors);
    let tier_header = header_name(&raw.tier_header, "tier_header", errors);
    if listen.is_some() && listen == admin_listen {
        errors.push("admin_listen", "must differ from server.listen");
    }
    Some(ServerConfig {
        listen: listen?,
        admin_listen: admin_listen?,
        threads: raw.threads.max(1),
        grace_period: Duration::from_secs(raw.grace_period_s),
        upstream_header: raw.upstream_header,
        client_header_timeout: Duration::from_millis(raw.client_header_timeout_ms),
        trusted_proxies: cidrs(&raw.trusted_proxies, "trusted_proxies", errors),
        key_id_header: key_id_header?,
        tier_header: tier_header?,
    })
}

fn cors(raw: &RawCors, errors: &mut Scope<'_, '_>) -> CorsConfig {
    let mut origins = Vec::with_capacity(raw.origins.len());
    for (j, text) in raw.origins.iter().enumerate() {
        match OriginPattern::parse(text) {
            Some(p) => origins.push(p),
            None => errors.push(
                &format!("origins[{j}]"),
                format!("\"{text}\" is not an origin (*, https://app.example.com, *.example.com)"),
            ),
        }
    }
    if raw.origins.is_empty() {
        errors.push("origins", "must list at least one origin");
    }
    if raw.credentials && origins.contains(&OriginPattern::Any) {
        errors.push(
            "credentials",
            "cannot be true with origins: [\"*\"] (browsers refuse it); list the origins",
        );
    }
    let token = |t: &str| !t.is_empty() && http::HeaderName::from_bytes(t.as_bytes()).is_ok();
    let mut methods = Vec::new();
    for (j, m) in raw.methods.iter().enumerate() {
        if http::Method::from_bytes(m.as_bytes()).is_ok() && !m.is_empty() {
            methods.push(m.to_ascii_uppercase());
        } else {
            errors.push(&format!("methods[{j}]"), format!("\"{m}\" is not a method"));
        }
    }
    let names = |list: &[String], field: &str, errors: &mut Scope<'_, '_>| {
        let mut out = Vec::new();
        for (j, h) in list.iter().enumerate() {
            if token(h) {
                out.push(h.to_ascii_lowercase());
            } else {
                errors.push(
                    &format!("{field}[{j}]"),
                    format!("\"{h}\" is not a header name"),
                );
            }
        }
        out
    };
    let headers = names(&raw.headers, "headers", errors);
    let expose = names(&raw.expose_headers, "expose_headers", errors);
    CorsConfig::new(
        origins,
        methods,
        headers,
        &expose,
        raw.credentials,
        raw.max_age_s,
    )
}

/// Parses a list of CIDR blocks; each bad one is an error naming its index.
fn cidrs(raw: &[String], field: &str, errors: &mut Scope<'_, '_>) -> Vec<Cidr> {
    raw.iter()
        .enumerate()
        .filter_map(|(j, text)| match text.parse::<Cidr>() {
            Ok(block) => Some(block),
            Err(e) => {
                errors.push(&format!("{field}[{j}]"), e.to_string());
                None
            }
        })
        .collect()
}

fn header_name(
    text: &str,
    field: &'static str,
    errors: &mut Scope<'_, '_>,
) -> Option<http::HeaderName> {
    match http::HeaderName::from_bytes(text.as_bytes()) {
        Ok(name) => Some(name),
        Err(_) => {
            errors.push(field, format!("\"{text}\" is not a valid header name"));
            None
        }
    }
}

fn upstream(raw: &RawUpstream, errors: &mut Scope<'_, '_>) -> Option<UpstreamConfig> {
    if raw.peers.is_empty() {
        errors.push("peers", "must list at least one peer");
    }
    let mut peers = Vec::with_capacity(raw.peers.len());
    let mut seen = HashSet::new();
    for (i, text) in raw.peers.iter().enumerate() {
        let field = format!("peers[{i}]");
        if let Some(addr) = socket_addr(text, &field, errors) {
            if seen.insert(addr) {
                peers.push(addr);
            } else {
                errors.push(&field, format!("duplicate peer {addr}"));
            }
        }
    }
    if raw.connect_timeout_ms == 0 {
        errors.push("connect_timeout_ms", "must be greater than 0");
    }
    if raw.read_timeout_ms == 0 {
        errors.push("read_timeout_ms", "must be greater than 0");
    }
    let health_check = health_check(&raw.health_check, &mut errors.scope("health_check"));
    let breaker = breaker(&raw.breaker, &mut errors.scope("breaker"));
    for (i, status) in raw.retry_on_status.iter().enumerate() {
        if !(500..=599).contains(status) {
            errors.push(&format!("retry_on_status[{i}]"), "must be a 5xx status");
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

fn breaker(raw: &RawBreaker, errors: &mut Scope<'_, '_>) -> BreakerConfig {
    if !(raw.failure_rate > 0.0 && raw.failure_rate <= 1.0) {
        errors.push("failure_rate", "must be greater than 0 and at most 1");
    }
    if raw.min_requests == 0 {
        errors.push("min_requests", "must be at least 1");
    }
    if raw.window_ms < 100 {
        errors.push("window_ms", "must be at least 100");
    }
    if raw.open_ms == 0 {
        errors.push("open_ms", "must be greater than 0");
    }
    if raw.half_open_probes == 0 {
        errors.push("half_open_probes", "must be at least 1");
    }
    for (i, status) in raw.failure_statuses.iter().enumerate() {
        if !(100..=599).contains(status) {
            errors.push(&format!("failure_statuses[{i}]"), "must be an HTTP status");
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

fn hedge(raw: &RawHedge, errors: &mut Scope<'_, '_>) -> HedgeConfig {
    let delay = match &raw.delay {
        RawDelay::Ms(0) => {
            errors.push("delay", "must be greater than 0 ms");
            HedgeDelay::P95
        }
        RawDelay::Ms(ms) => HedgeDelay::Fixed(Duration::from_millis(*ms)),
        RawDelay::Text(t) if t == "p95" => HedgeDelay::P95,
        RawDelay::Text(t) => {
            errors.push(
                "delay",
                format!("must be p95 or a number of milliseconds, got \"{t}\""),
            );
            HedgeDelay::P95
        }
    };
    if !(raw.max_extra_percent > 0.0 && raw.max_extra_percent <= 100.0) {
        errors.push(
            "max_extra_percent",
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

fn retry_budget(raw: &RawRetryBudget, errors: &mut Scope<'_, '_>) -> RetryBudgetConfig {
    if !(raw.percent >= 0.0 && raw.percent <= 100.0) {
        errors.push("percent", "must be from 0 to 100");
    }
    if !(raw.min_per_s >= 0.0 && raw.min_per_s.is_finite()) {
        errors.push("min_per_s", "must be 0 or more");
    }
    RetryBudgetConfig {
        percent: raw.percent.clamp(0.0, 100.0),
        min_per_s: raw.min_per_s.max(0.0),
    }
}

fn health_check(raw: &RawHealthCheck, errors: &mut Scope<'_, '_>) -> HealthCheckConfig {
    if !raw.path.starts_with('/') {
        errors.push("path", "must start with '/'");
    }
    if raw.interval_ms < 50 {
        errors.push("interval_ms", "must be at least 50");
    }
    if raw.timeout_ms == 0 {
        errors.push("timeout_ms", "must be greater than 0");
    }
    if raw.healthy_after == 0 {
        errors.push("healthy_after", "must be at least 1");
    }
    if raw.unhealthy_after == 0 {
        errors.push("unhealthy_after", "must be at least 1");
    }
    HealthCheckConfig {
        path: raw.path.clone(),
        interval: Duration::from_millis(raw.interval_ms),
        timeout: Duration::from_millis(raw.timeout_ms),
        healthy_after: raw.healthy_after.max(1),
        unhealthy_after: raw.unhealthy_after.max(1),
    }
}

fn redis(raw: &RawRedis, errors: &mut Scope<'_, '_>) -> Option<RedisConfig> {
    if !(raw.url.starts_with("redis://") || raw.url.starts_with("rediss://")) {
        errors.push(
            "url",
            "must start with redis:// (e.g. redis://127.0.0.1:6379)",
        );
        return None;
    }
    if raw.timeout_ms == 0 {
        errors.push("timeout_ms", "must be greater than 0");
    }
    Some(RedisConfig {
        url: raw.url.clone(),
        timeout: Duration::from_millis(raw.timeout_ms.max(1)),
    })
}

fn admin(raw: &RawAdmin, errors: &mut Scope<'_, '_>) -> AdminConfig {
    let token_sha256 = match raw.token_sha256.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(text, &mut hash).is_ok() {
                Some(hash)
            } else {
                errors.push(
                    "token_sha256",
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
    errors: &mut Scope<'_, '_>,
) -> BTreeMap<String, Tier> {
    let Some(raw) = raw else { return seed_tiers() };
    let mut tiers = BTreeMap::new();
    for (name, tier) in raw {
        let mut errors = errors.scope(name);
        if !(tier.rate_per_s.is_finite() && tier.rate_per_s > 0.0) {
            errors.push("rate_per_s", "must be a number greater than 0");
            continue;
        }
        if tier.burst == 0 {
            errors.push("burst", "must be at least 1");
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

fn ratelimit(raw: &RawRateLimit, errors: &mut Scope<'_, '_>) -> RateLimitConfig {
    let on_redis_error = match raw.on_redis_error.as_str() {
        "local" => OnRedisError::Local,
        "open" => OnRedisError::Open,
        "closed" => OnRedisError::Closed,
        other => {
            errors.push(
                "on_redis_error",
                format!("must be local, open or closed, got \"{other}\""),
            );
            OnRedisError::Local
        }
    };
    if raw.expected_instances == 0 {
        errors.push("expected_instances", "must be at least 1");
    }
    RateLimitConfig {
        on_redis_error,
        expected_instances: raw.expected_instances.max(1),
    }
}

fn auth_mode(route: &RawRoute, has_redis: bool, errors: &mut Scope<'_, '_>) -> AuthMode {
    match route.auth.as_deref() {
        None | Some("none") => AuthMode::None,
        Some("api_key") => {
            if !has_redis {
                errors.push(
                    "auth",
                    "api_key needs a redis: section (keys live in Redis)",
                );
            }
            AuthMode::ApiKey
        }
        Some(other) => {
            errors.push("auth", format!("must be none or api_key, got \"{other}\""));
            AuthMode::None
        }
    }
}

fn ratelimit_mode(
    route: &RawRoute,
    auth: AuthMode,
    tiers: &BTreeMap<String, Tier>,
    has_redis: bool,
    errors: &mut Scope<'_, '_>,
) -> RateLimitMode {
    let field = "ratelimit";
    let mode = match (route.ratelimit.as_deref(), auth) {
        (None, AuthMode::ApiKey) | (Some("key"), AuthMode::ApiKey) => RateLimitMode::Key,
        (None, AuthMode::None) | (Some("off"), _) => RateLimitMode::Off,
        (Some("key"), AuthMode::None) => {
            errors.push(
                field,
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
                    "ratelimit_tier",
                    format!("no tier named \"{tier}\" (known: {})", known.join(", ")),
                );
                RateLimitMode::Off
            }
            None => {
                errors.push(field, "ip needs ratelimit_tier: <tier>");
                RateLimitMode::Off
            }
        },
        (Some(other), _) => {
            errors.push(field, format!("must be off, key or ip, got \"{other}\""));
            RateLimitMode::Off
        }
    };
    if mode != RateLimitMode::Off && !has_redis {
        errors.push(field, "rate limits need a redis: section");
    }
    mode
}

fn routes(
    raw: &[RawRoute],
    upstreams: &BTreeMap<String, RawUpstream>,
    tiers: &BTreeMap<String, Tier>,
    has_redis: bool,
    errors: &mut Scope<'_, '_>,
) -> Vec<RouteConfig> {
    let mut names = HashSet::new();
    let mut matches = HashSet::new();
    let mut routes = Vec::with_capacity(raw.len());
    for (i, route) in raw.iter().enumerate() {
        let mut errors = errors.scope(&format!("[{i}]"));
        if route.name.is_empty() {
            errors.push("name", "must not be empty");
        } else if !names.insert(route.name.as_str()) {
            errors.push("name", format!("duplicate route name \"{}\"", route.name));
        }
        if !route.path_prefix.starts_with('/') {
            errors.push("path_prefix", "must start with '/'");
        }
        let host = route.host.as_ref().map(|h| h.to_ascii_lowercase());
        if !matches.insert((host.clone(), route.path_prefix.clone())) {
            errors.push(
                "path_prefix",
                "another route already matches this host and prefix",
            );
        }
        if !upstreams.contains_key(&route.upstream) {
            let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
            errors.push(
                "upstream",
                format!(
                    "no upstream named \"{}\" (known: {})",
                    route.upstream,
                    known.join(", ")
                ),
            );
        }
        let auth = auth_mode(route, has_redis, &mut errors);
        let ratelimit = ratelimit_mode(route, auth, tiers, has_redis, &mut errors);
        routes.push(RouteConfig {
            name: route.name.clone(),
            host,
            path_prefix: route.path_prefix.clone(),
            strip_prefix: route.strip_prefix,
            upstream: route.upstream.clone(),
            auth,
            ratelimit,
            retry_budget: retry_budget(&route.retry_budget, &mut errors.scope("retry_budget")),
            hedge: route
                .hedge
                .as_ref()
                .map(|h| hedge(h, &mut errors.scope("hedge"))),
            forward_credentials: route.forward_credentials,
            ip_rules: IpRules {
                allow: cidrs(&route.allow, "allow", &mut errors),
                deny: cidrs(&route.deny, "deny", &mut errors),
            },
            max_body_bytes: Some(route.max_body_bytes).filter(|n| *n > 0),
            whole_segments: route.whole_segments,
            compress: route.compress.as_ref().map(|c| {
                let mut errors = errors.scope("compress");
                if !(1..=9).contains(&c.level) {
                    errors.push("level", "must be 1 (fastest) to 9 (smallest)");
                }
                if c.types.is_empty() {
                    errors.push("types", "must list at least one content type");
                }
                CompressConfig {
                    level: c.level.clamp(1, 9),
                    min_bytes: c.min_bytes,
                    types: c
                        .types
                        .iter()
                        .map(|t| t.trim().to_ascii_lowercase())
                        .collect(),
                }
            }),
            cors: route
                .cors
                .as_ref()
                .map(|c| cors(c, &mut errors.scope("cors"))),
        });
    }
    routes
}

fn access_log(raw: &RawAccessLog, errors: &mut Scope<'_, '_>) -> AccessLogConfig {
    if raw.path.trim().is_empty() {
        errors.push("path", "must name a file");
    }
    let format = match raw.format.as_deref() {
        None | Some("json") => AccessLogFormat::Json,
        Some("combined") => AccessLogFormat::Combined,
        Some(other) => {
            errors.push(
                "format",
                format!("must be json or combined, got \"{other}\""),
            );
            AccessLogFormat::Json
        }
    };
    if raw.queue_capacity == 0 {
        errors.push("queue_capacity", "must be at least 1");
    }
    AccessLogConfig {
        path: PathBuf::from(&raw.path),
        format,
        queue_capacity: raw.queue_capacity.max(1),
    }
}

fn kafka(raw: &RawKafka, errors: &mut Scope<'_, '_>) -> KafkaConfig {
    if raw.brokers.trim().is_empty() {
        errors.push("brokers", "must name at least one host:port");
    }
    if raw.topic.is_empty() || raw.topic.len() > 249 {
        errors.push("topic", "must be 1 to 249 characters");
    }
    if raw.queue_capacity == 0 || raw.queue_capacity > 10_000_000 {
        errors.push("queue_capacity", "must be from 1 to 10000000");
    }
    if raw
        .spill_dir
        .as_deref()
        .is_some_and(|d| d.trim().is_empty())
    {
        errors.push(
            "spill_dir",
            "must be a folder path (leave it out to spill nothing)",
        );
    }
    if raw.spill_max_mb == 0 || raw.spill_max_mb > 1_048_576 {
        errors.push("spill_max_mb", "must be from 1 to 1048576");
    }
    let value_compression = match raw.value_compression.as_str() {
        "none" => sluice_event::ValueCompression::None,
        "zstd" => sluice_event::ValueCompression::Zstd,
        other => {
            errors.push(
                "value_compression",
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
