//! Calls an app in-process, for the modules' unit tests.

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

/// Sends `method uri` with `headers` and `body` to `app`; the status and the body bytes.
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Bytes) {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Body::from(body.to_string())).expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, bytes)
}
