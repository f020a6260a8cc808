//! gRPC clients expect gRPC answers: a refusal to a gRPC request (`content-type:
//! application/grpc…`) is sent as HTTP 200 with `grpc-status` and `grpc-message` in a
//! Trailers-Only response (RFC-less but standard: gRPC over HTTP/2, "Responses"), so the
//! client sees e.g. `UNAUTHENTICATED` instead of a protocol error about a JSON body.

use http::HeaderMap;

/// The gRPC status code for a refusal's HTTP status. 429 is `RESOURCE_EXHAUSTED` (what a
/// quota or rate limit is in gRPC's own terms) rather than the transport mapping's
/// `UNAVAILABLE`, so clients do not retry it as an outage.
pub fn code_for(status: u16) -> u32 {
    match status {
        400 | 413 | 431 => 3, // INVALID_ARGUMENT (413/431: the request was too big)
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 => 12,            // UNIMPLEMENTED: no route is no method
        408 | 504 => 4,       // DEADLINE_EXCEEDED
        429 => 8,             // RESOURCE_EXHAUSTED
        502 | 503 => 14,      // UNAVAILABLE
        _ => 2,               // UNKNOWN
    }
}

/// Whether the request is a gRPC call.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2: Percent-Encoded): printable ASCII
/// other than `%` as it is, everything else as `%XX` of its UTF-8 bytes.
pub fn encode_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_and_messages_are_percent_encoded() {
        assert_eq!(code_for(401), 16);
        assert_eq!(code_for(429), 8);
        assert_eq!(code_for(503), 14);
        assert_eq!(code_for(404), 12);
        assert_eq!(encode_message("no route: 100%"), "no route: 100%25");
        assert_eq!(encode_message("é\n"), "%C3%A9%0A");
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/grpc+proto".parse().expect("value"),
        );
        assert!(is_grpc(&h));
        h.insert("content-type", "application/json".parse().expect("value"));
        assert!(!is_grpc(&h));
    }
}
