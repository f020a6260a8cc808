//! `/admin/usage/*`: the analytics service's query API, read through the admin listener
//! so the dashboard's usage page stays on one origin (its CSP allows no other) and behind
//! the admin sign-in. Only the read endpoints pass: `summary`, `routes`, `timeseries` and
//! `keys/{id}`, with their query string.

use super::state::{error_response, AdminState};
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `true` for the analytics paths the dashboard may read.
fn allowed(path: &str) -> bool {
    match path.split_once('/') {
        None => matches!(path, "summary" | "routes" | "timeseries"),
        Some(("keys", id)) => {
            !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        Some(_) => false,
    }
}

pub(super) async fn read(
    State(state): State<AdminState>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(base) = state.snapshot.load().config.admin.analytics_url.clone() else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "analytics_not_configured",
            "set admin.analytics_url to the analytics service to see usage",
        );
    };
    if !allowed(&path) {
        return error_response(StatusCode::NOT_FOUND, "not_found", "no such usage view");
    }
    let mut url = format!("{base}/analytics/{path}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(&q);
    }
    let answer = async {
        let r = state.http.get(&url).send().await?;
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        Ok::<_, reqwest::Error>((status, r.bytes().await?))
    };
    match answer.await {
        Ok((status, body)) => (status, [(CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "dashboard usage: analytics unreachable");
            error_response(
                StatusCode::BAD_GATEWAY,
                "analytics_unavailable",
                "the analytics service did not answer; is it running?",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn only_the_read_endpoints_pass() {
        for ok in ["summary", "routes", "timeseries", "keys/key_0123abcd"] {
            assert!(allowed(ok), "{ok}");
        }
        for no in [
            "health",
            "keys/",
            "keys/../summary",
            "keys/a/b",
            "../admin",
            "summary/x",
        ] {
            assert!(!allowed(no), "{no}");
        }
    }
}
