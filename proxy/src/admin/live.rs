//! The live views the dashboard polls: `/admin/upstreams` (every peer's health, breaker
//! state and error rate over the last minute) and `/admin/stats` (request rates, latency
//! percentiles and status classes per route, and 429s per tier, over the last minutes).

use super::state::{AdminState, ApiError};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// The window of a peer's "recent" error rate.
const RECENT: Duration = Duration::from_secs(60);

/// Longest window `/admin/stats` answers (what the history keeps).
const MAX_WINDOW_S: u64 = 600;

pub(super) async fn upstreams(State(state): State<AdminState>) -> Json<Value> {
    let snapshot = state.snapshot.load();
    let recent = state.traffic.peers_recent(RECENT);
    let groups: serde_json::Map<String, Value> = snapshot
        .upstreams
        .iter()
        .map(|(name, group)| {
            let peers: Vec<Value> = group
                .peer_health()
                .into_iter()
                .map(|(addr, healthy, breaker)| {
                    let peer = addr.to_string();
                    let counts = recent
                        .get(&(name.clone(), peer.clone()))
                        .copied()
                        .unwrap_or_default();
                    let error_rate = (counts.attempts > 0)
                        .then(|| counts.failures as f64 / counts.attempts as f64);
                    json!({
                        "peer": peer, "healthy": healthy, "breaker": breaker.as_str(),
                        "recent": {
                            "window_s": RECENT.as_secs(), "attempts": counts.attempts,
                            "failures": counts.failures, "error_rate": error_rate,
                        },
                    })
                })
                .collect();
            (name.clone(), json!({ "peers": peers }))
        })
        .collect();
    Json(json!({ "generation": snapshot.generation, "upstreams": groups }))
}

/// `GET /admin/stats?window_s=300`.
pub(super) async fn stats(
    State(state): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let window = match q.get("window_s").map(|v| v.parse::<u64>()) {
        None => 300,
        Some(Ok(n)) if (1..=MAX_WINDOW_S).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("window_s: must be a whole number of seconds from 1 to {MAX_WINDOW_S}"),
            ))
        }
    };
    Ok(Json(state.traffic.series(Duration::from_secs(window))))
}
