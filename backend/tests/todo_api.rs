//! The todo service's HTTP API against a real, throwaway PostgreSQL.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sluice_backend::{db, todo};
use sluice_testkit::postgres::Postgres;
use tower::ServiceExt;

async fn app(pg: &Postgres) -> Router {
    let pool = db::connect(&pg.url(), "todo", 4).await.expect("connect");
    todo::migrate(&pool).await.expect("migrate");
    todo::app(todo::AppState { pool })
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (status, value)
}

#[tokio::test]
async fn create_read_update_list_delete() {
    let pg = Postgres::start();
    let app = app(&pg).await;

    let (status, item) = call(
        &app,
        "POST",
        "/todo",
        Some(r#"{"title":"Finish the report","status":"pending","due_date":"2024-10-30"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = item["id"].as_i64().expect("id");
    assert_eq!(item["title"], "Finish the report");
    assert_eq!(item["due_date"], "2024-10-30");
    assert_eq!(item["description"], Value::Null);
    assert!(item["created_at"].is_string() && item["updated_at"].is_string());

    let (status, got) = call(&app, "GET", &format!("/todos/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, item);

    let (status, updated) = call(
        &app,
        "PUT",
        &format!("/todos/{id}"),
        Some(r#"{"status":"done","description":"sent","due_date":null}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["status"], "done");
    assert_eq!(updated["description"], "sent");
    assert_eq!(updated["due_date"], Value::Null);
    assert_eq!(
        updated["title"], "Finish the report",
        "fields not sent are kept"
    );

    call(&app, "POST", "/todo", Some(r#"{"title":"second"}"#)).await;
    call(
        &app,
        "POST",
        "/todo",
        Some(r#"{"title":"third","status":"in_progress"}"#),
    )
    .await;
    let (_, all) = call(&app, "GET", "/todos", None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(3));
    let (_, done) = call(&app, "GET", "/todos?status=done", None).await;
    assert_eq!(done, json!([updated]));
    let (_, page) = call(&app, "GET", "/todos?limit=1&offset=1", None).await;
    assert_eq!(page[0]["title"], "second");
    assert_eq!(page.as_array().map(Vec::len), Some(1));

    let (status, _) = call(&app, "DELETE", &format!("/todos/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&app, "GET", &format!("/todos/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (status, _) = call(&app, "DELETE", &format!("/todos/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_gets_400_naming_the_field() {
    let pg = Postgres::start();
    let app = app(&pg).await;
    let cases = [
        (
            "POST",
            "/todo",
            Some("{not json"),
            "invalid_json",
            "body is not valid JSON",
        ),
        (
            "POST",
            "/todo",
            Some(r#"{"status":"pending"}"#),
            "invalid_request",
            "title: is required",
        ),
        (
            "POST",
            "/todo",
            Some(r#"{"title":"a","status":"someday"}"#),
            "invalid_request",
            "status: must be one of",
        ),
        (
            "POST",
            "/todo",
            Some(r#"{"title":"a","due_date":"tomorrow"}"#),
            "invalid_request",
            "due_date: must be an ISO date",
        ),
        (
            "GET",
            "/todos?status=nope",
            None,
            "invalid_request",
            "status: must be one of",
        ),
        (
            "GET",
            "/todos?limit=-1",
            None,
            "invalid_request",
            "limit: must be a whole number",
        ),
        (
            "GET",
            "/todos/abc",
            None,
            "invalid_request",
            "id: must be a whole number",
        ),
        (
            "PUT",
            "/todos/1",
            Some(r#"{"title":""}"#),
            "invalid_request",
            "title: must not be empty",
        ),
    ];
    for (method, uri, body, code, message) in cases {
        let (status, value) = call(&app, method, uri, body).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{method} {uri} {body:?}: {value}"
        );
        assert_eq!(value["error"], code, "{method} {uri}: {value}");
        let text = value["message"].as_str().unwrap_or_default();
        assert!(text.starts_with(message), "{method} {uri}: {text}");
    }
    let (status, _) = call(&app, "PUT", "/todos/999", Some(r#"{"title":"x"}"#)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, all) = call(&app, "GET", "/todos", None).await;
    assert_eq!(all, json!([]), "rejected requests must not write anything");
}

#[tokio::test]
async fn database_down_means_503_and_health_says_so() {
    let pg = Postgres::start();
    let app = app(&pg).await;
    let (status, health) = call(&app, "GET", "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["database"], "up");

    pg.stop();
    let (status, body) = call(&app, "GET", "/todos", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "database_unavailable");
    let (status, health) = call(&app, "GET", "/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["database"], "down");

    pg.start_again();
    let mut recovered = false;
    for _ in 0..50 {
        if call(&app, "GET", "/health", None).await.0 == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the service must recover when the database returns"
    );
}

#[tokio::test]
async fn two_instances_share_one_database() {
    let pg = Postgres::start();
    let (first, second) = (app(&pg).await, app(&pg).await);
    let (_, item) = call(&first, "POST", "/todo", Some(r#"{"title":"shared"}"#)).await;
    let id = item["id"].as_i64().expect("id");
    let (status, seen) = call(&second, "GET", &format!("/todos/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["title"], "shared");
}
