//! The dashboard at `/ui/`: its files, embedded in the binary (no web server beside it),
//! and its sign-in (`/ui/session`), which turns the admin token into a session cookie.
//!
//! Every response carries a Content-Security-Policy that allows scripts and styles only
//! from this origin (no inline script, no `eval`), so a key name that slipped into the
//! page as markup still could not run.

use super::auth::{configured, session_id, token_matches};
use super::session::COOKIE;
use super::state::{error_response, AdminState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The page's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The dashboard's files: path under `/ui/`, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/dom.js"),
    ),
    (
        "keys.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/keys.js"),
    ),
    (
        "upstreams.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/upstreams.js"),
    ),
    (
        "traffic.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/traffic.js"),
    ),
    (
        "usage.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/usage.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/charts.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/style.css"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/vendor/uPlot.min.css"),
    ),
];

/// The dashboard's routes.
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/ui", get(|| async { redirect_to_ui() }))
        .route("/ui/", get(|| async { file("index.html") }))
        .route("/ui/session", get(current).post(sign_in).delete(sign_out))
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>| async move { file(&path) }),
        )
}

/// Headers every dashboard response carries.
fn hardened(mut response: Response) -> Response {
    let h = response.headers_mut();
    let pairs: [(HeaderName, &'static str); 5] = [
        (HeaderName::from_static("content-security-policy"), CSP),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
        (HeaderName::from_static("x-frame-options"), "DENY"),
        (HeaderName::from_static("referrer-policy"), "no-referrer"),
        // The files change with the binary: always revalidate (cheap on loopback).
        (CACHE_CONTROL, "no-cache"),
    ];
    for (name, value) in pairs {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn redirect_to_ui() -> Response {
    hardened((StatusCode::PERMANENT_REDIRECT, [(LOCATION, "/ui/")]).into_response())
}

fn file(path: &str) -> Response {
    let found = FILES.iter().find(|(name, _, _)| *name == path);
    let response = match found {
        Some((_, content_type, bytes)) => {
            ([(CONTENT_TYPE, *content_type)], Bytes::from_static(bytes)).into_response()
        }
        None => error_response(StatusCode::NOT_FOUND, "not_found", "no such dashboard file"),
    };
    hardened(response)
}

fn session_json(csrf: &str, expires_in_s: u64) -> Value {
    json!({ "csrf": csrf, "expires_in_s": expires_in_s })
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /ui/session`: whether the cookie holds a live session, and its CSRF token (which
/// only a page on this origin can read: the admin listener sends no CORS headers).
async fn current(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let expected = match configured(&state) {
        Ok(hash) => hash,
        Err(refusal) => return refusal.into_response(),
    };
    let valid = session_id(&headers).and_then(|id| state.sessions.check(id, &expected));
    let response = match valid {
        Some(v) => Json(session_json(&v.csrf, v.expires_in.as_secs())).into_response(),
        None => error_response(
            StatusCode::UNAUTHORIZED,
            "no_session",
            "sign in with the admin token",
        ),
    };
    no_store(hardened(response))
}

/// `POST /ui/session` with `{"token": "..."}`: a session cookie for the right token.
async fn sign_in(State(state): State<AdminState>, body: Bytes) -> Response {
    no_store(hardened(sign_in_answer(&state, &body)))
}

fn sign_in_answer(state: &AdminState, body: &[u8]) -> Response {
    let expected = match configured(state) {
        Ok(hash) => hash,
        Err(refusal) => return refusal.into_response(),
    };
    let token = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v.get("token").and_then(Value::as_str).map(str::to_owned),
        Err(e) => {
            let message = format!("body is not valid JSON: {e}");
            return error_response(StatusCode::BAD_REQUEST, "invalid_json", &message);
        }
    };
    let Some(token) = token else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token: required",
        );
    };
    if !token_matches(token.trim(), &expected) {
        tracing::warn!("dashboard sign-in refused: wrong admin token");
        return error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "the admin token is wrong",
        );
    }
    let ttl = state.snapshot.load().config.admin.session_ttl;
    let issued = match state.sessions.issue(expected, ttl) {
        Ok(issued) => issued,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for a session id");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            );
        }
    };
    // Not `Secure`: the admin listener speaks plain HTTP on loopback. Put it behind TLS
    // before exposing it anywhere else.
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        issued.id,
        ttl.as_secs()
    );
    let mut response = Json(session_json(&issued.csrf, ttl.as_secs())).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// `DELETE /ui/session`: ends the session and clears the cookie.
async fn sign_out(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        state.sessions.end(id);
    }
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    no_store(hardened(response))
}
