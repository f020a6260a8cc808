//! Validation of `routes:`: matching, auth and rate-limit modes, retry budgets, hedging,
//! compression, CORS policies and IP rules; `validate.rs` checks the other sections.

use super::model::{
    AuthMode, CompressConfig, CorsConfig, HedgeConfig, HedgeDelay, IpRules, OriginPattern,
    RateLimitMode, RetryBudgetConfig, RouteConfig, Tier,
};
use super::raw::{RawCors, RawDelay, RawHedge, RawRetryBudget, RawRoute, RawUpstream};
use super::scope::Scope;
use crate::net::cidr::Cidr;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

pub(super) fn cors(raw: &RawCors, errors: &mut Scope<'_, '_>) -> CorsConfig {
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
pub(super) fn cidrs(raw: &[String], field: &str, errors: &mut Scope<'_, '_>) -> Vec<Cidr> {
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

pub(super) fn hedge(raw: &RawHedge, errors: &mut Scope<'_, '_>) -> HedgeConfig {
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

pub(super) fn retry_budget(raw: &RawRetryBudget, errors: &mut Scope<'_, '_>) -> RetryBudgetConfig {
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

pub(super) fn auth_mode(route: &RawRoute, has_redis: bool, errors: &mut Scope<'_, '_>) -> AuthMode {
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

pub(super) fn ratelimit_mode(
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

pub(super) fn routes(
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
        let plain_http1 = |up: &RawUpstream| {
            up.tls.is_none() && up.protocol.as_deref().is_none_or(|p| p.trim() == "http1")
        };
        if route.hedge.is_some()
            && upstreams
                .get(&route.upstream)
                .is_some_and(|u| !plain_http1(u))
        {
            errors.push(
                "hedge",
                "hedged copies are sent over cleartext HTTP/1.1: hedge only routes to an http1 group without tls",
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
            redirect_https: route.redirect_https,
            websocket_idle: route.websocket.then(|| {
                if route.websocket_idle_timeout_s == 0 {
                    errors.push("websocket_idle_timeout_s", "must be at least 1");
                }
                std::time::Duration::from_secs(route.websocket_idle_timeout_s.max(1))
            }),
            hsts: route
                .hsts_max_age_s
                .and_then(|age| http::HeaderValue::from_str(&format!("max-age={age}")).ok()),
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
