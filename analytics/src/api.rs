//! The query API (port 8100): `GET /analytics/summary`, `/analytics/routes`,
//! `/analytics/keys/{id}`, `/analytics/timeseries`, all with `from` / `to` (RFC 3339 or
//! Unix seconds; default: the last hour); bad parameters -> 400 naming the parameter. A
//! query loads at most [`store::MAX_ROWS`] rows: a range holding more is a 400 asking for
//! a shorter one, so no query can pull the whole table into memory.

use crate::aggregate::Counts;
use crate::histogram;
use crate::store::{self, StatRow};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use sluice_backend::error::AppError;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};

/// Handler state.
#[derive(Clone)]
pub struct AppState {
    /// Connections to the `analytics` schema.
    pub pool: PgPool,
    /// The consumer's progress, for `/health`.
    pub progress: std::sync::Arc<crate::progress::Progress>,
}

/// The API app.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/analytics/summary", get(summary))
        .route("/analytics/routes", get(routes))
        .route("/analytics/keys/{id}", get(key))
        .route("/analytics/timeseries", get(timeseries))
        .with_state(state)
}

/// 200 while the consumer gets somewhere (with how many checks in a row found no
/// partition assigned, which a spare member of a big group legitimately sees); 503 naming
/// the stalled partitions otherwise.
async fn health(State(s): State<AppState>) -> Response {
    if let Some(failing) = s.progress.failing_for().filter(|d| *d >= FAILING_IS_STUCK) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "stuck", "failing_for_s": failing.as_secs()})),
        )
            .into_response();
    }
    let stalled = s.progress.stalled();
    if stalled.is_empty() {
        Json(json!({"status": "ok", "unassigned_checks": s.progress.unassigned_checks()}))
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "stalled", "stalled": stalled})),
        )
            .into_response()
    }
}

/// `/metrics` (Prometheus text): the consumer's progress, for the "analytics stalled"
/// and lag alerts. Computed at scrape time from what `/health` reads.
async fn metrics(State(s): State<AppState>) -> Response {
    let p = &s.progress;
    let failing = p.failing_for().map_or(0.0, |d| d.as_secs_f64());
    let body = format!(
        "# HELP analytics_stalled_partitions Partitions with records on the broker that the consumer does not get.\n\
         # TYPE analytics_stalled_partitions gauge\n\
         analytics_stalled_partitions {}\n\
         # HELP analytics_consumer_lag_records Records on the broker past this member's positions.\n\
         # TYPE analytics_consumer_lag_records gauge\n\
         analytics_consumer_lag_records {}\n\
         # HELP analytics_apply_failing_seconds How long applying batches has been failing (0: it is not).\n\
         # TYPE analytics_apply_failing_seconds gauge\n\
         analytics_apply_failing_seconds {failing}\n{}",
        p.stalled().len(),
        p.lag(),
        sluice_backend::service_metrics::render(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

/// How long applying batches may keep failing before `/health` says 503 `stuck`.
const FAILING_IS_STUCK: std::time::Duration = std::time::Duration::from_secs(10);

fn bad(param: &str, message: &str) -> AppError {
    AppError::InvalidParameter(format!("{param}: {message}"))
}

fn time_param(
    q: &HashMap<String, String>,
    name: &str,
    default: DateTime<Utc>,
) -> Result<DateTime<Utc>, AppError> {
    let Some(text) = q.get(name) else {
        return Ok(default);
    };
    if let Ok(secs) = text.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0).ok_or_else(|| bad(name, "out of range"));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad(
                name,
                "must be RFC 3339 (2026-11-22T12:00:00Z) or Unix seconds",
            )
        })
}

fn range(q: &HashMap<String, String>) -> Result<(DateTime<Utc>, DateTime<Utc>), AppError> {
    let now = Utc::now();
    let to = time_param(q, "to", now)?;
    let an_hour_before = to
        .checked_sub_signed(Duration::hours(1))
        .ok_or_else(|| bad("to", "out of range"))?;
    let from = time_param(q, "from", an_hour_before)?;
    if from > to {
        return Err(bad("from", "must not be after to"));
    }
    Ok((from, to))
}

/// The stored rows of a range, or a 400 when it holds more than a query may load.
async fn rows(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    route: Option<&str>,
    key_id: Option<&str>,
) -> Result<Vec<StatRow>, AppError> {
    let rows = store::rows(pool, from, to, route, key_id).await?;
    if rows.len() > store::MAX_ROWS {
        return Err(bad(
            "from",
            &format!(
                "the range holds more than {} rows; ask for a shorter one",
                store::MAX_ROWS
            ),
        ));
    }
    Ok(rows)
}

fn stats(c: &Counts) -> Value {
    let ms = |q: f64| histogram::quantile(&c.hist, q).map(|us| us as f64 / 1000.0);
    json!({
        "requests": c.count, "errors": c.errors, "limited": c.limited, "hedged": c.hedged,
        "retried": c.retried, "bytes_in": c.bytes_in, "bytes_out": c.bytes_out,
        "latency_ms": { "p50": ms(0.5), "p95": ms(0.95), "p99": ms(0.99) },
    })
}

fn total(rows: &[StatRow]) -> Counts {
    let mut c = Counts::default();
    rows.iter().for_each(|r| c.merge(&r.counts));
    c
}

fn grouped(rows: &[StatRow], by: impl Fn(&StatRow) -> &str) -> Map<String, Value> {
    let mut groups: BTreeMap<&str, Counts> = BTreeMap::new();
    for r in rows {
        groups.entry(by(r)).or_default().merge(&r.counts);
    }
    groups
        .into_iter()
        .map(|(k, c)| (k.to_string(), json!(c.count)))
        .collect()
}

fn report(rows: &[StatRow], from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    let mut v = stats(&total(rows));
    if let Value::Object(map) = &mut v {
        map.insert("from".into(), json!(from));
        map.insert("to".into(), json!(to));
        map.insert(
            "by_status".into(),
            Value::Object(grouped(rows, |r| &r.status_class)),
        );
        map.insert(
            "by_route".into(),
            Value::Object(grouped(rows, |r| &r.route)),
        );
    }
    v
}

async fn summary(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let (from, to) = range(&q)?;
    let rows = rows(&s.pool, from, to, None, None).await?;
    Ok(Json(report(&rows, from, to)))
}

async fn routes(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let (from, to) = range(&q)?;
    let rows = rows(&s.pool, from, to, None, None).await?;
    let mut by_route: BTreeMap<&str, Vec<StatRow>> = BTreeMap::new();
    for r in &rows {
        by_route.entry(&r.route).or_default().push(r.clone());
    }
    let list: Vec<Value> = by_route
        .into_iter()
        .map(|(route, rows)| {
            let mut v = stats(&total(&rows));
            if let Value::Object(map) = &mut v {
                map.insert("route".into(), json!(route));
                map.insert(
                    "by_status".into(),
                    Value::Object(grouped(&rows, |r| &r.status_class)),
                );
            }
            v
        })
        .collect();
    Ok(Json(json!({"from": from, "to": to, "routes": list})))
}

async fn key(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let (from, to) = range(&q)?;
    let rows = rows(&s.pool, from, to, None, Some(&id)).await?;
    let mut v = report(&rows, from, to);
    if let Value::Object(map) = &mut v {
        map.insert("key_id".into(), json!(id));
    }
    Ok(Json(v))
}

async fn timeseries(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let (from, to) = range(&q)?;
    let step = match q.get("step").map(|t| t.parse::<i64>()) {
        None => 60,
        Some(Ok(n)) if n >= 60 && n % 60 == 0 => n,
        Some(_) => {
            let message = "must be a whole number of minutes in seconds (60, 300, ...)";
            return Err(bad("step", message));
        }
    };
    let route = q.get("route").map(String::as_str);
    let key = q.get("key").map(String::as_str);
    let rows = rows(&s.pool, from, to, route, key).await?;
    let mut points: BTreeMap<i64, Counts> = BTreeMap::new();
    for r in &rows {
        let t = r.minute.timestamp();
        points
            .entry(t - t.rem_euclid(step))
            .or_default()
            .merge(&r.counts);
    }
    let points: Vec<Value> = points
        .into_iter()
        .map(|(t, c)| {
            let mut v = stats(&c);
            if let Value::Object(map) = &mut v {
                map.insert("t".into(), json!(DateTime::from_timestamp(t, 0)));
            }
            v
        })
        .collect();
    Ok(Json(
        json!({"from": from, "to": to, "step": step, "route": route, "key": key, "points": points}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_range_at_the_edge_of_time_is_a_400_not_a_panic() {
        // The default `from` is `to` minus an hour: it must not overflow.
        for to in ["-8334601230457", "-8334601227000", "8210266876799"] {
            let result = std::panic::catch_unwind(|| range(&query(&[("to", to)])));
            assert!(result.is_ok(), "to={to} panicked");
        }
        assert!(range(&query(&[("from", "-8334601230457"), ("to", "0")])).is_err());
    }
}
