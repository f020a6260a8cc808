//! What each fuzz target checks, as plain functions: the libFuzzer targets in
//! `fuzz_targets/` call them with generated inputs, and `tests/corpus.rs` replays the
//! committed corpus (and every crash found so far) through them on stable in `make test`.
//!
//! Each check panics only when the code under test breaks a promise: a panic inside the
//! parser itself, or an answer that contradicts what the parser documents.

use std::path::Path;

/// The config loader: any text gives a `Config` or errors that name the file (and a line
/// within the text, when they give one); never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.yaml");
    if let Err(errors) = sluice::config::parse(path, text) {
        assert!(!errors.0.is_empty(), "an Err without any error");
        let lines = yaml_lines(text) + 1;
        for e in &errors.0 {
            assert_eq!(e.file, path, "error names another file: {e}");
            assert!(!e.message.is_empty(), "error without a message: {e:?}");
            if let Some(line) = e.line {
                assert!(
                    (1..=lines).contains(&line),
                    "line {line} outside 1..={lines}: {e}"
                );
            }
        }
    }
}

/// Lines as YAML counts them: CR LF, a lone CR and a lone LF each end one (YAML 1.2
/// §5.4), so a file with old Mac line endings is many lines, not one.
fn yaml_lines(text: &str) -> usize {
    let bytes = text.as_bytes();
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    breaks + 1
}

/// The event decoder: any message gives events or errors, never a panic; every event
/// it accepts encodes and decodes to itself.
pub fn event_batch(data: &[u8]) {
    for event in sluice_event::RequestEvent::decode_batch(data)
        .into_iter()
        .flatten()
    {
        let again = sluice_event::RequestEvent::decode(&event.encode());
        assert_eq!(again.ok().as_ref(), Some(&event), "round trip changed it");
    }
}

/// The API-key header parser on up to eight `X-API-Key` / `Authorization` values cut from
/// the input: a key it returns is short, visible ASCII and taken from one of them.
pub fn api_key_header(data: &[u8]) {
    let mut headers = http::HeaderMap::new();
    for (i, chunk) in data.split(|b| *b == 0).take(8).enumerate() {
        let Some((kind, value)) = chunk.split_first() else {
            continue;
        };
        let Ok(value) = http::HeaderValue::from_bytes(value) else {
            continue;
        };
        let name = if (kind ^ i as u8) & 1 == 0 {
            http::header::AUTHORIZATION
        } else {
            http::HeaderName::from_static("x-api-key")
        };
        headers.append(name, value);
    }
    if let Ok(key) = sluice::keys::extract_key(&headers) {
        assert!(!key.is_empty() && key.len() <= sluice::keys::MAX_KEY_LEN);
        assert!(key.bytes().all(|b| b.is_ascii_graphic()), "{key:?}");
        assert!(
            headers
                .values()
                .any(|v| v.as_bytes().windows(key.len()).any(|w| w == key.as_bytes())),
            "{key:?} is in no header"
        );
    }
}

/// The payments JSON parsers: a `POST /payments` body (with and without `requestedAt`),
/// a processor's `service-health` and `GET /payments/{id}` answers, and a queue entry.
/// None panics; an accepted payment has a UUID and a positive amount.
pub fn payment_json(data: &[u8]) {
    use sluice_backend::payments::client::{Health, Stored};
    use sluice_backend::payments::queue::Job;
    for with_requested_at in [false, true] {
        if let Ok(p) = sluice_backend::rinha::parse_payment(data, with_requested_at) {
            assert!(p.cents > 0, "accepted amount {} cents", p.cents);
            assert!(uuid_like(&p.correlation_id), "{:?}", p.correlation_id);
            assert_eq!(p.requested_at.is_some(), with_requested_at);
        }
    }
    let _ = Health::parse(data);
    let _ = Stored::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Job::parse(text.to_string());
    }
}

/// Path normalization (what routes and IP rules see): a normal path starts with `/`, has
/// no empty, `.` or `..` segment, no `%XX` for an unreserved character, and normalizing
/// it again changes nothing.
pub fn request_path(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Some(normal) = sluice::router::path::normalize(path) else {
        return;
    };
    assert!(normal.starts_with('/'), "{path:?} -> {normal:?}");
    let inner = normal.strip_suffix('/').unwrap_or(&normal);
    for segment in inner.split('/').skip(1) {
        assert!(
            !segment.is_empty() && segment != "." && segment != "..",
            "{path:?} -> {normal:?}"
        );
    }
    let again = sluice::router::path::normalize(&normal);
    assert_eq!(
        again.as_deref(),
        Some(&*normal),
        "not idempotent for {path:?}"
    );
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
}
