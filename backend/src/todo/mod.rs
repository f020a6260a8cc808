//! The todo REST service: `POST /todo`, `GET /todos`, `GET|PUT|DELETE /todos/{id}`,
//! `GET /health`.

pub mod model;
pub mod store;

use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use model::{Todo, TodoFields};
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;

/// Default and largest page size of `GET /todos`.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// The health check's database round trip must finish within this.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// Connections to the `todo` schema.
    pub pool: PgPool,
}

/// The todo app, testable without a socket.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/todo", post(create))
        .route("/todos", get(list).post(create))
        .route("/todos/{id}", get(read).put(update).delete(remove))
        .route("/health", get(health))
        .route("/metrics", get(crate::service_metrics::handler))
        .fallback(|| async {
            AppError::NotFound("no such endpoint; see GET /todos, POST /todo".into())
        })
        .with_state(state)
}

/// Runs the todo migrations (in the pool's `todo` schema).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATIONS.run(pool).await
}

/// The `todo` schema's migrations.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/todo");

async fn create(State(state): State<AppState>, body: Bytes) -> Result<Response, AppError> {
    let fields = TodoFields::parse(&body, true)?;
    let todo = store::create(&state.pool, &fields).await?;
    Ok((StatusCode::CREATED, Json(todo)).into_response())
}

fn query_number(
    query: &HashMap<String, String>,
    name: &str,
    default: i64,
    max: i64,
) -> Result<i64, AppError> {
    match query.get(name) {
        None => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (0..=max).contains(&n) => Ok(n),
            _ => Err(AppError::BadRequest(format!(
                "{name}: must be a whole number from 0 to {max}, got \"{text}\""
            ))),
        },
    }
}

async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Todo>>, AppError> {
    let status = query
        .get("status")
        .map(|s| model::parse_status(s))
        .transpose()?;
    let limit = query_number(&query, "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = query_number(&query, "offset", 0, i64::MAX)?;
    Ok(Json(
        store::list(&state.pool, status.as_deref(), limit, offset).await?,
    ))
}

fn parse_id(text: &str) -> Result<i64, AppError> {
    text.parse::<i64>()
        .map_err(|_| AppError::BadRequest(format!("id: must be a whole number, got \"{text}\"")))
}

fn missing(id: i64) -> AppError {
    AppError::NotFound(format!("no todo with id {id}"))
}

async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Todo>, AppError> {
    let id = parse_id(&id)?;
    store::get(&state.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| missing(id))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Todo>, AppError> {
    let id = parse_id(&id)?;
    let fields = TodoFields::parse(&body, false)?;
    store::update(&state.pool, id, &fields)
        .await?
        .map(Json)
        .ok_or_else(|| missing(id))
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = parse_id(&id)?;
    if store::delete(&state.pool, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing(id))
    }
}

async fn health(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(HEALTH_TIMEOUT, store::ping(&state.pool)).await {
        Ok(Ok(())) => Json(json!({ "status": "ok", "database": "up" })).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            unhealthy()
        }
        Err(_) => unhealthy(),
    }
}

fn unhealthy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "database": "down",
                     "message": "the database is unavailable" })),
    )
        .into_response()
}
