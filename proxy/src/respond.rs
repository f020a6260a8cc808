//! Responses sluice writes itself: JSON `{"error": code, "message": sentence}`.

use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Writes a complete JSON error response.
pub async fn json_error(
    session: &mut Session,
    status: u16,
    code: &str,
    message: &str,
) -> Result<()> {
    json_error_with(session, status, code, message, &[]).await
}

/// [`json_error`] with extra response headers (`Retry-After`, rate-limit headers).
pub async fn json_error_with(
    session: &mut Session,
    status: u16,
    code: &str,
    message: &str,
    headers: &[(&'static str, String)],
) -> Result<()> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut header = ResponseHeader::build(status, Some(3 + headers.len()))?;
    header.insert_header("content-type", "application/json")?;
    header.insert_header("content-length", body.len().to_string())?;
    for (name, value) in headers {
        header.insert_header(*name, value.as_str())?;
    }
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body.into()), true).await?;
    Ok(())
}
