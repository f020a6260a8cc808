//! `/admin/keys`: create, list, read, change, revoke and rotate API keys.

use super::state::{AdminState, ApiError};
use crate::keys::store::{KeyChanges, KeyStore, StoreError};
use crate::keys::{KeyLimits, KeyRecord, KeyStatus};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// Longest key name accepted.
const MAX_NAME: usize = 200;

type Answer = Result<Response, ApiError>;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no key with id {id}"),
    )
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Revoked(_) => ApiError::new(StatusCode::CONFLICT, "revoked", e.to_string()),
            StoreError::Redis(_) => {
                tracing::warn!(error = %e, "admin key operation: redis unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "key_store_unavailable",
                    "the key store (Redis) is unavailable; try again shortly",
                )
            }
            StoreError::Random(_) | StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "admin key operation failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

fn store(state: &AdminState) -> Result<&KeyStore, ApiError> {
    state.services.key_store.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "redis_not_configured",
            "API keys need a redis: section in the config",
        )
    })
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body is not valid JSON: {e}"),
        )),
    }
}

fn name(value: &Value) -> Result<String, ApiError> {
    match value.as_str().map(str::trim) {
        Some(n) if !n.is_empty() && n.chars().count() <= MAX_NAME => Ok(n.to_string()),
        _ => Err(bad(
            "name: must be a non-empty string of at most 200 characters",
        )),
    }
}

fn tier(state: &AdminState, value: &Value) -> Result<String, ApiError> {
    let snapshot = state.snapshot.load();
    let tiers = &snapshot.config.tiers;
    match value.as_str() {
        Some(t) if tiers.contains_key(t) => Ok(t.to_string()),
        Some(t) => {
            let known: Vec<&str> = tiers.keys().map(String::as_str).collect();
            Err(bad(format!(
                "tier: no tier named \"{t}\" (known: {})",
                known.join(", ")
            )))
        }
        None => Err(bad("tier: must be a string")),
    }
}

/// Largest own rate or burst accepted: far above any real limit, and safe in the bucket
/// script's floating-point arithmetic.
const MAX_LIMIT: f64 = 1e9;

/// `rate_per_s` and `burst` taken out of `map`: both, or neither (`None`). With
/// `nullable`, both `null` mean "back to the tier's limits" (`Some(None)`).
fn limits(
    map: &mut Map<String, Value>,
    nullable: bool,
) -> Result<Option<Option<KeyLimits>>, ApiError> {
    let (rate, burst) = (map.remove("rate_per_s"), map.remove("burst"));
    match (rate, burst) {
        (None, None) => Ok(None),
        (Some(Value::Null), Some(Value::Null)) if nullable => Ok(Some(None)),
        (Some(rate), Some(burst)) => {
            let rate_per_s = rate
                .as_f64()
                .filter(|r| r.is_finite() && *r > 0.0 && *r <= MAX_LIMIT)
                .ok_or_else(|| {
                    bad("rate_per_s: must be a number greater than 0 (requests per second)")
                })?;
            let burst = burst
                .as_u64()
                .filter(|b| *b >= 1 && (*b as f64) <= MAX_LIMIT)
                .ok_or_else(|| bad("burst: must be a whole number of at least 1"))?;
            Ok(Some(Some(KeyLimits { rate_per_s, burst })))
        }
        (Some(_), None) => Err(bad("burst: is required with rate_per_s")),
        (None, Some(_)) => Err(bad("rate_per_s: is required with burst")),
    }
}

fn with_secret(record: &KeyRecord, key: &str) -> Value {
    let mut value = json!({
        "id": record.id, "key": key, "name": record.name, "tier": record.tier,
        "status": record.status, "created_at": record.created_at,
    });
    if let (Some(limits), Some(map)) = (record.limits, value.as_object_mut()) {
        map.insert("rate_per_s".into(), json!(limits.rate_per_s));
        map.insert("burst".into(), json!(limits.burst));
    }
    value
}

fn answer(result: Answer) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn create(State(state): State<AdminState>, body: Bytes) -> Response {
    answer(create_key(&state, &body).await)
}

async fn create_key(state: &AdminState, body: &[u8]) -> Answer {
    let store = store(state)?;
    let mut map = object(body)?;
    let name = name(&map.remove("name").ok_or_else(|| bad("name: is required"))?)?;
    let tier = tier(
        state,
        &map.remove("tier").ok_or_else(|| bad("tier: is required"))?,
    )?;
    let own = limits(&mut map, false)?.flatten();
    if let Some(field) = map.keys().next() {
        return Err(bad(format!("{field}: is not a field of a key")));
    }
    let (record, key) = store.create(&name, &tier, own).await?;
    Ok((StatusCode::CREATED, Json(with_secret(&record, &key))).into_response())
}

pub(super) async fn list(State(state): State<AdminState>) -> Response {
    let run = async { Ok(Json(json!({ "keys": store(&state)?.list().await? })).into_response()) };
    answer(run.await)
}

pub(super) async fn get(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let run = async {
        match store(&state)?.get(&id).await? {
            Some(record) => Ok(Json(record).into_response()),
            None => Err(not_found(&id)),
        }
    };
    answer(run.await)
}

pub(super) async fn patch(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    answer(patch_key(&state, &id, &body).await)
}

async fn patch_key(state: &AdminState, id: &str, body: &[u8]) -> Answer {
    let store = store(state)?;
    let mut changes = KeyChanges::default();
    let mut map = object(body)?;
    changes.limits = limits(&mut map, true)?;
    for (field, value) in &map {
        match field.as_str() {
            "name" => changes.name = Some(name(value)?),
            "tier" => changes.tier = Some(tier(state, value)?),
            "disabled" => {
                let disabled = value
                    .as_bool()
                    .ok_or_else(|| bad("disabled: must be true or false"))?;
                changes.status = Some(if disabled {
                    KeyStatus::Disabled
                } else {
                    KeyStatus::Active
                });
            }
            other => {
                return Err(bad(format!(
                "{other}: is not a field you can change (name, tier, disabled, rate_per_s + burst)"
            )))
            }
        }
    }
    match store.update(id, changes).await? {
        Some(record) => Ok(Json(record).into_response()),
        None => Err(not_found(id)),
    }
}

pub(super) async fn revoke(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let run = async {
        let changes = KeyChanges {
            status: Some(KeyStatus::Revoked),
            ..KeyChanges::default()
        };
        match store(&state)?.update(&id, changes).await {
            Ok(Some(record)) => Ok(Json(record).into_response()),
            Ok(None) => Err(not_found(&id)),
            // Revoking twice is not an error.
            Err(StoreError::Revoked(_)) => Ok(StatusCode::NO_CONTENT.into_response()),
            Err(e) => Err(e.into()),
        }
    };
    answer(run.await)
}

pub(super) async fn rotate(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let run = async {
        match store(&state)?.rotate(&id).await? {
            Some((record, key)) => Ok(Json(with_secret(&record, &key)).into_response()),
            None => Err(not_found(&id)),
        }
    };
    answer(run.await)
}

/// `GET /admin/tiers`: the tiers a key can take, with their limits.
pub(super) async fn tiers(State(state): State<AdminState>) -> Json<Value> {
    let snapshot = state.snapshot.load();
    let tiers: Map<String, Value> = snapshot
        .config
        .tiers
        .iter()
        .map(|(name, t)| {
            (
                name.clone(),
                json!({ "rate_per_s": t.rate_per_s, "burst": t.burst }),
            )
        })
        .collect();
    Json(json!({ "tiers": tiers }))
}
