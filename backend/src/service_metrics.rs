//! Metrics every service exports on `GET /metrics` (todo, payments, analytics; the
//! processor simulators and test upstreams too): the process (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, …), its HTTP requests by route
//! (`http_requests_total{service,route,method,status}`,
//! `http_request_duration_seconds{service,route}`), its database pool
//! (`db_pool_connections{service,state}`, read at scrape time) and query latency
//! (`db_query_duration_seconds{service,query}`, through [`timed`]).
//!
//! One registry per process; a service adds its own metrics with [`registry`].

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use sqlx::PgPool;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Latency buckets (seconds) from 0.5 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct ServiceMetrics {
    registry: Registry,
    service: OnceLock<String>,
    requests: IntCounterVec,
    duration: HistogramVec,
    queries: HistogramVec,
    pool_connections: IntGaugeVec,
    pools: Mutex<Vec<PgPool>>,
}

fn metrics() -> &'static ServiceMetrics {
    static METRICS: OnceLock<ServiceMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let registry = Registry::new();
        // The definitions are constants; registering them into a fresh registry cannot
        // collide, and the process collector only fails on platforms without /proc.
        #[allow(clippy::expect_used)]
        let m = (|| -> prometheus::Result<ServiceMetrics> {
            let requests = IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests answered, by route and status.",
                ),
                &["service", "route", "method", "status"],
            )?;
            let duration = HistogramVec::new(
                HistogramOpts::new("http_request_duration_seconds", "Time to answer, by route.")
                    .buckets(BUCKETS.to_vec()),
                &["service", "route"],
            )?;
            let queries = HistogramVec::new(
                HistogramOpts::new(
                    "db_query_duration_seconds",
                    "Database query time, by query.",
                )
                .buckets(BUCKETS.to_vec()),
                &["service", "query"],
            )?;
            let pool_connections = IntGaugeVec::new(
                Opts::new(
                    "db_pool_connections",
                    "Connections of the service's pool: idle or in use.",
                ),
                &["service", "state"],
            )?;
            registry.register(Box::new(requests.clone()))?;
            registry.register(Box::new(duration.clone()))?;
            registry.register(Box::new(queries.clone()))?;
            registry.register(Box::new(pool_connections.clone()))?;
            #[cfg(target_os = "linux")]
            registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))?;
            Ok(ServiceMetrics {
                registry,
                service: OnceLock::new(),
                requests,
                duration,
                queries,
                pool_connections,
                pools: Mutex::new(Vec::new()),
            })
        })()
        .expect("static metric definitions are valid");
        m
    })
}

/// Names this process in every metric's `service` label (`todo`, `payments`, …); the
/// first call wins.
pub fn set_service(name: &str) {
    let _ = metrics().service.set(name.to_string());
}

fn service() -> &'static str {
    metrics().service.get().map_or("unknown", String::as_str)
}

/// The process-wide registry, for a service's own metrics.
pub fn registry() -> &'static Registry {
    &metrics().registry
}

/// Reports `pool`'s connections on each scrape.
pub fn watch_pool(pool: &PgPool) {
    if let Ok(mut pools) = metrics().pools.lock() {
        pools.push(pool.clone());
    }
}

/// Runs `query` (a database call) and records how long it took under `name`.
pub async fn timed<T>(name: &'static str, query: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = query.await;
    metrics()
        .queries
        .with_label_values(&[service(), name])
        .observe(started.elapsed().as_secs_f64());
    out
}

/// Middleware (`axum::middleware::from_fn(service_metrics::track)`): counts and times
/// each request under its route pattern (`/todos/{id}`, not the id itself, so the label's
/// values stay few; unmatched paths count as `unmatched`).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let m = metrics();
    m.requests
        .with_label_values(&[service(), &route, &method, response.status().as_str()])
        .inc();
    m.duration
        .with_label_values(&[service(), &route])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `app` with [`track`] on every route.
pub fn instrument(app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::from_fn(track))
}

/// The text exposition of everything in the registry (pool gauges read now).
pub fn render() -> String {
    let m = metrics();
    if let Ok(pools) = m.pools.lock() {
        let (mut size, mut idle) = (0i64, 0i64);
        for pool in pools.iter() {
            size += i64::from(pool.size());
            idle += i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        }
        if !pools.is_empty() {
            m.pool_connections
                .with_label_values(&[service(), "idle"])
                .set(idle);
            m.pool_connections
                .with_label_values(&[service(), "in_use"])
                .set((size - idle).max(0));
        }
    }
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut out) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /metrics`.
pub async fn handler() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[tokio::test]
    async fn requests_are_counted_by_route_pattern_and_the_process_is_exported() {
        let app =
            instrument(axum::Router::new().route("/metrics-test/{id}", get(|| async { "ok" })));
        for id in ["1", "2", "3"] {
            let (status, _) =
                crate::test_support::call(&app, "GET", &format!("/metrics-test/{id}"), &[], "")
                    .await;
            assert_eq!(status, 200);
        }
        crate::test_support::call(&app, "GET", "/nowhere", &[], "").await;
        let text = render();
        assert!(
            text.lines().any(|l| l.starts_with("http_requests_total{")
                && l.contains("route=\"/metrics-test/{id}\"")
                && l.contains("status=\"200\"")
                && l.ends_with(" 3")),
            "{text}"
        );
        assert!(text.contains("route=\"unmatched\""), "{text}");
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }
}
