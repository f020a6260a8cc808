//! Routes of one config generation: host + longest path prefix -> [`Route`], each with
//! its upstream group and the per-route state its stages share (retry and hedge
//! budgets, the hedged answers' latency). The route stage (`stage/route.rs`) asks the
//! [`Router`]; the snapshot builds it.

pub mod latency;
pub mod path;

use crate::budget::Budget;
use crate::config::RouteConfig;
use crate::upstream::UpstreamGroup;
use std::sync::Arc;

/// A route with its upstream group resolved.
#[derive(Debug)]
pub struct Route {
    /// The validated route settings.
    pub config: RouteConfig,
    /// The group requests on this route go to.
    pub upstream: Arc<UpstreamGroup>,
    /// Bounds this route's retries.
    pub retry_budget: Budget,
    /// Bounds this route's hedges.
    pub hedge_budget: Budget,
    /// Response times of this route's hedged answers (for `delay: p95`).
    pub latency: latency::LatencyTracker,
}

impl Route {
    /// Whether a request that made `attempts` attempts may make another: within the
    /// upstream's `retries` and this route's retry budget (asked last, so the budget is
    /// only spent on a retry that happens).
    pub fn may_retry(&self, attempts: usize) -> bool {
        attempts <= self.upstream.config.retries
            && self.retry_budget.try_take(tokio::time::Instant::now())
    }
}

/// Finds the route for a request. Built once per config snapshot.
#[derive(Debug, Default)]
pub struct Router {
    /// Longest prefix first; at equal length host-specific routes first, so the first
    /// match is the best one.
    routes: Vec<Arc<Route>>,
}

impl Router {
    /// Orders `routes` for first-match lookup.
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by(|a, b| {
            b.config
                .path_prefix
                .len()
                .cmp(&a.config.path_prefix.len())
                .then(b.config.host.is_some().cmp(&a.config.host.is_some()))
        });
        Self {
            routes: routes.into_iter().map(Arc::new).collect(),
        }
    }

    /// The route for `host` (may carry a port; compared case-insensitively) and `path`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Arc<Route>> {
        let host = host.map(strip_port);
        self.routes.iter().find(|route| {
            matches_prefix(path, &route.config.path_prefix, route.config.whole_segments)
                && match (&route.config.host, host) {
                    (None, _) => true,
                    (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
                    (Some(_), None) => false,
                }
        })
    }

    /// All routes, in match order.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }
}

/// Whether `path` is under `prefix`: as a string, or with `whole_segments` only where a
/// segment ends (`/api` matches `/api` and `/api/x`, not `/apix`).
fn matches_prefix(path: &str, prefix: &str, whole_segments: bool) -> bool {
    let Some(rest) = path.strip_prefix(prefix) else {
        return false;
    };
    !whole_segments || prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/')
}

fn strip_port(host: &str) -> &str {
    // "[::1]:80" keeps its brackets; "a:80" -> "a".
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

/// The path to send upstream for a route with `strip_prefix`: never empty, always '/'-led.
pub fn strip_prefix<'a>(path_and_query: &'a str, prefix: &str) -> std::borrow::Cow<'a, str> {
    let rest = path_and_query.get(prefix.len()..).unwrap_or("");
    if rest.starts_with('/') {
        rest.into()
    } else {
        format!("/{rest}").into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HealthCheckConfig, UpstreamConfig};
    use std::time::Duration;

    fn group() -> Arc<UpstreamGroup> {
        let config = UpstreamConfig {
            peers: vec!["127.0.0.1:1".parse().expect("addr")],
            health_check: HealthCheckConfig {
                path: "/health".into(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                healthy_after: 1,
                unhealthy_after: 1,
                kind: crate::config::HealthCheckKind::Http,
            },
            retries: 0,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            breaker: crate::config::BreakerConfig {
                failure_rate: 0.5,
                min_requests: 20,
                window: Duration::from_secs(10),
                consecutive_failures: 5,
                open: Duration::from_secs(5),
                half_open_probes: 3,
                failure_statuses: vec![500],
            },
            retry_on_status: vec![502, 503],
            protocol: crate::config::UpstreamProtocol::Http1,
            tls: None,
        };
        Arc::new(UpstreamGroup::new("g", config).expect("group"))
    }

    fn route(name: &str, host: Option<&str>, prefix: &str, g: &Arc<UpstreamGroup>) -> Route {
        Route {
            config: RouteConfig {
                name: name.into(),
                host: host.map(Into::into),
                path_prefix: prefix.into(),
                strip_prefix: false,
                upstream: "g".into(),
                auth: crate::config::AuthMode::None,
                ratelimit: crate::config::RateLimitMode::Off,
                retry_budget: crate::config::RetryBudgetConfig {
                    percent: 20.0,
                    min_per_s: 10.0,
                },
                hedge: None,
                forward_credentials: false,
                ip_rules: Default::default(),
                max_body_bytes: None,
                whole_segments: false,
                cors: None,
                compress: None,
                redirect_https: false,
                hsts: None,
                websocket_idle: None,
            },
            retry_budget: Budget::new(crate::config::RetryBudgetConfig {
                percent: 20.0,
                min_per_s: 10.0,
            }),
            hedge_budget: Budget::new(crate::config::RetryBudgetConfig {
                percent: 10.0,
                min_per_s: 0.0,
            }),
            latency: Default::default(),
            upstream: g.clone(),
        }
    }

    fn router() -> Router {
        let g = group();
        Router::new(vec![
            route("root", None, "/", &g),
            route("todo", None, "/todo", &g),
            route("api", None, "/api/", &g),
            route("api-example", Some("example.com"), "/api/", &g),
        ])
    }

    fn name(r: &Router, host: Option<&str>, path: &str) -> Option<String> {
        r.find(host, path).map(|r| r.config.name.clone())
    }

    #[test]
    fn longest_prefix_wins() {
        let r = router();
        assert_eq!(name(&r, None, "/todos/1").as_deref(), Some("todo"));
        assert_eq!(name(&r, None, "/api/todos").as_deref(), Some("api"));
        assert_eq!(name(&r, None, "/other").as_deref(), Some("root"));
    }

    #[test]
    fn host_specific_route_wins_at_equal_length_and_ignores_port_and_case() {
        let r = router();
        assert_eq!(
            name(&r, Some("Example.COM:9999"), "/api/x").as_deref(),
            Some("api-example")
        );
        assert_eq!(
            name(&r, Some("other.org"), "/api/x").as_deref(),
            Some("api")
        );
    }

    #[test]
    fn no_match_without_catch_all() {
        let g = group();
        let r = Router::new(vec![route("todo", None, "/todo", &g)]);
        assert!(r.find(None, "/nope").is_none());
    }

    #[test]
    fn strip_prefix_keeps_a_leading_slash_and_the_query() {
        assert_eq!(
            strip_prefix("/api/todos?limit=1", "/api/"),
            "/todos?limit=1"
        );
        assert_eq!(strip_prefix("/api/todos", "/api"), "/todos");
        assert_eq!(strip_prefix("/api", "/api"), "/");
    }

    #[test]
    fn whole_segment_prefixes_end_where_a_segment_ends() {
        assert!(matches_prefix("/api", "/api", true));
        assert!(matches_prefix("/api/x", "/api", true));
        assert!(!matches_prefix("/apix", "/api", true));
        assert!(matches_prefix("/apix", "/api", false));
        assert!(matches_prefix("/api/x", "/api/", true));
        assert!(!matches_prefix("/ap", "/api", false));
    }
}
