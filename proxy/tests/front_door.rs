//! What the front door does to every request (issue 14), against a running sluice and
//! a fake upstream over raw sockets: request body limits.

mod common;

use common::one_route_config;
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::http;
use sluice_testkit::services::Sluice;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn start(route_extra: &str) -> (Sluice, FakeUpstream) {
    let up = FakeUpstream::start("up");
    let config = one_route_config(&up.addr.to_string())
        .replace("upstream: g }", &format!("upstream: g{route_extra} }}"));
    (Sluice::start(&config), up)
}

/// Writes `head`, then `body` in pieces (the server may answer and close before the end:
/// that is an answer too), and reads the response.
fn send(s: &Sluice, head: &str, body: &[&[u8]]) -> String {
    let mut c = TcpStream::connect(s.proxy).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = c.write_all(head.as_bytes());
    for piece in body {
        std::thread::sleep(Duration::from_millis(20));
        if c.write_all(piece).is_err() {
            break;
        }
    }
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn bodies_over_the_route_limit_get_413_with_or_without_a_length() {
    let (s, up) = start(", max_body_bytes: 1000");
    let big = vec![b'x'; 5000];

    // Declared too large: refused before the upstream is contacted.
    let text = send(
        &s,
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
        &[&big],
    );
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"body_too_large\""), "{text}");
    assert_eq!(up.hits(), 0, "the upstream saw a body declared too large");

    // Chunked, growing past the limit: cut off with the same 413.
    let chunk = format!("{:x}\r\n{}\r\n", 400, "y".repeat(400));
    let chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_bytes(), 5).collect();
    let text = send(
        &s,
        "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        &chunks,
    );
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(up.hits(), 0, "the upstream got a whole body over the limit");

    // Within the limit, both ways: forwarded.
    let text = send(
        &s,
        "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n",
        &[&big[..1000]],
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let text = send(
        &s,
        "POST /small-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        &[chunk.as_bytes(), chunk.as_bytes(), b"0\r\n\r\n"],
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let metrics = http::get(s.admin, "/metrics").expect("metrics").body;
    assert!(
        metrics.contains("sluice_refusals_total{reason=\"body_too_large\"} 2"),
        "{metrics}"
    );
}

/// The header lines the upstream received for `path`, sent from source address `from`
/// with `headers`, lower-cased; and the response.
fn echo_from(s: &Sluice, from: &str, headers: &[(&str, &str)]) -> (String, String) {
    let mut c = common::connect_from(from, s.proxy);
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut head =
        String::from("GET /echo-headers HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).expect("write");
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    let (response_head, body) = got.split_once("\r\n\r\n").unwrap_or((&got, ""));
    (
        body.to_ascii_lowercase(),
        response_head.to_ascii_lowercase(),
    )
}

fn header<'a>(lines: &'a str, name: &str) -> Option<&'a str> {
    lines
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn forwarding_headers_request_ids_and_trusted_proxies() {
    let up = FakeUpstream::start("up");
    let config = one_route_config(&up.addr.to_string())
        .replace(
            "grace_period_s: 1 }",
            "grace_period_s: 1, trusted_proxies: [127.0.0.2/32] }",
        )
        .replace(
            "  - { name: r, path_prefix: /, upstream: g }",
            "  - { name: r, path_prefix: /, upstream: g }\n  - { name: partners, path_prefix: /partners, upstream: g, allow: [203.0.113.0/24] }",
        );
    let s = Sluice::start(&config);

    // A client (not a trusted proxy) forging its address: the forgery is not passed on.
    let (seen, response) = echo_from(&s, "127.0.0.1", &[("X-Forwarded-For", "203.0.113.9")]);
    assert_eq!(
        header(&seen, "x-forwarded-for"),
        Some("127.0.0.1"),
        "{seen}"
    );
    assert_eq!(header(&seen, "x-forwarded-proto"), Some("http"), "{seen}");
    assert_eq!(
        header(&seen, "x-forwarded-host"),
        Some("shop.example"),
        "{seen}"
    );
    // A request id made here, the same upstream and back; a trace started.
    let id = header(&response, "x-request-id").expect("a request id on the response");
    assert_eq!(header(&seen, "x-request-id"), Some(id), "{seen}");
    let trace = header(&seen, "traceparent").expect("a traceparent started");
    assert!(trace.starts_with("00-") && trace.len() == 55, "{trace}");

    // Through the trusted proxy at 127.0.0.2: its list is believed and extended, its
    // X-Forwarded-Proto kept; the client's own id and trace pass through.
    let trace_in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (seen, response) = echo_from(
        &s,
        "127.0.0.2",
        &[
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Proto", "https"),
            ("X-Request-Id", "Req-42"),
            ("traceparent", trace_in),
        ],
    );
    assert_eq!(
        header(&seen, "x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.2"),
        "{seen}"
    );
    assert_eq!(header(&seen, "x-forwarded-proto"), Some("https"), "{seen}");
    assert_eq!(header(&seen, "x-request-id"), Some("req-42"), "{seen}");
    assert_eq!(header(&response, "x-request-id"), Some("req-42"));
    assert_eq!(header(&seen, "traceparent"), Some(trace_in), "{seen}");
    // A request id that is not a plain token is replaced.
    let (seen, _) = echo_from(&s, "127.0.0.1", &[("X-Request-Id", "a b\"c")]);
    assert_ne!(header(&seen, "x-request-id"), Some("a b\"c"), "{seen}");

    // The client address that rules see: the forwarded one only via the trusted proxy.
    let partners = |from: &str| {
        let mut c = common::connect_from(from, s.proxy);
        c.write_all(b"GET /partners HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut got = String::new();
        let _ = c.read_to_string(&mut got);
        got
    };
    assert!(partners("127.0.0.2").starts_with("HTTP/1.1 200"));
    assert!(
        partners("127.0.0.1").starts_with("HTTP/1.1 403"),
        "a forged address was believed"
    );
}

#[test]
fn cors_preflights_are_answered_here_and_allowed_origins_marked() {
    let (s, up) = start(
        ", cors: { origins: [\"https://app.example.com\", \"*.partner.example\"], methods: [GET, POST], headers: [content-type, x-api-key], expose_headers: [x-request-id], credentials: true, max_age_s: 300 }",
    );
    let preflight = |origin: &str, method: &str, headers: &str| {
        http::request(
            s.proxy,
            "OPTIONS",
            "/things",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", method),
                ("Access-Control-Request-Headers", headers),
            ],
            None,
        )
        .expect("preflight")
    };
    let r = preflight("https://app.example.com", "POST", "Content-Type, X-API-Key");
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-api-key")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-max-age"), Some("300"));
    assert_eq!(r.header("vary"), Some("Origin"));
    assert_eq!(
        preflight("https://a.partner.example", "GET", "").status,
        204
    );
    assert_eq!(up.hits(), 0, "preflights never reach the upstream");
    // Not allowed: another origin, method or header.
    for (origin, method, headers) in [
        ("https://evil.example", "GET", ""),
        ("https://app.example.com", "DELETE", ""),
        ("https://app.example.com", "GET", "X-Secret"),
    ] {
        let r = preflight(origin, method, headers);
        assert_eq!(r.status, 403, "{origin} {method} {headers}: {}", r.body);
        assert!(r.header("access-control-allow-origin").is_none());
    }
    // The actual request: forwarded, and its answer marked for an allowed origin only.
    let get = |origin: &str| {
        http::request(s.proxy, "GET", "/things", &[("Origin", origin)], None).expect("get")
    };
    let r = get("https://app.example.com");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    let r = get("https://evil.example");
    assert_eq!(
        r.status, 200,
        "CORS is the browser's to enforce; the request is served"
    );
    assert!(r.header("access-control-allow-origin").is_none());
}

#[test]
fn the_access_log_has_a_line_per_request_without_secrets_and_reopens_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let up = FakeUpstream::start("up");
    let config = format!(
        "{}access_log: {{ path: \"{}\", format: json }}\n",
        one_route_config(&up.addr.to_string()),
        path.display()
    );
    let s = Sluice::start(&config);
    for i in 0..3 {
        let r = http::request(
            s.proxy,
            "GET",
            &format!("/page/{i}?token=secret-in-query"),
            &[
                ("Authorization", "Bearer secret-in-header"),
                ("User-Agent", "probe"),
            ],
            None,
        )
        .expect("request");
        assert_eq!(r.status, 200);
    }
    let read_lines = |p: &std::path::Path, want: usize| -> Vec<serde_json::Value> {
        let mut lines = Vec::new();
        for _ in 0..100 {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            lines = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect();
            if lines.len() >= want {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        lines
    };
    let lines = read_lines(&path, 3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["path"], "/page/0");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["user_agent"], "probe");
    assert!(lines[0]["request_id"].is_string());
    let text = std::fs::read_to_string(&path).expect("log");
    assert!(
        !text.contains("secret"),
        "a secret reached the access log:\n{text}"
    );

    // logrotate: the file is moved away, SIGHUP, and new lines go to a new file.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).expect("rotate");
    s.process.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    http::get(s.proxy, "/after-rotate").expect("request");
    let lines = read_lines(&path, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["path"], "/after-rotate");
    assert_eq!(
        read_lines(&rotated, 3).len(),
        3,
        "the rotated file keeps its lines"
    );
}

/// The raw body of a GET for `path` with `Accept-Encoding: accept` (and the headers).
fn get_encoded(s: &Sluice, path: &str, accept: &str) -> (String, Vec<u8>) {
    let mut c = TcpStream::connect(s.proxy).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {accept}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response");
    let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
    let mut body = got[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (head, body)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

#[test]
fn responses_are_compressed_by_accept_encoding_and_decompress_to_the_original() {
    let (s, _up) = start(", compress: { level: 5, min_bytes: 1024 }");
    let (_, plain) = get_encoded(&s, "/big", "identity");
    assert!(plain.len() > 8000, "{}", plain.len());
    for (accept, coding) in [
        ("gzip", "gzip"),
        ("gzip, deflate, br", "gzip"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("zstd;q=0.2, gzip;q=0.9", "gzip"),
    ] {
        let (head, body) = get_encoded(&s, "/big", accept);
        assert!(
            head.contains(&format!("content-encoding: {coding}")),
            "{accept}: {head}"
        );
        assert!(head.contains("vary: accept-encoding"), "{head}");
        assert!(
            body.len() * 4 < plain.len(),
            "{accept}: {} bytes",
            body.len()
        );
        let mut decoded = Vec::new();
        match coding {
            "gzip" => {
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut decoded)
                    .expect("gunzip");
            }
            _ => decoded = zstd::decode_all(&body[..]).expect("zstd"),
        }
        assert_eq!(decoded, plain, "{accept}: decompresses to the original");
    }
    // Left alone: no acceptable coding, a small body, a type not listed.
    let (head, _) = get_encoded(&s, "/big", "gzip;q=0");
    assert!(!head.contains("content-encoding"), "{head}");
    let (head, _) = get_encoded(&s, "/small", "gzip");
    assert!(!head.contains("content-encoding"), "{head}");
    let (head, _) = get_encoded(&s, "/big?type=image%2Fpng", "gzip");
    assert!(!head.contains("content-encoding"), "{head}");
}

#[test]
fn header_limits_answer_431_and_every_refusal_is_counted_by_reason() {
    let (s, up) = start(", max_body_bytes: 1000");
    let metric =
        |reason: &str| common::series(&s, &format!("sluice_refusals_total{{reason=\"{reason}\"}}"));
    // Known reasons are there from the start, at 0.
    assert_eq!(metric("too_many_headers"), Some(0.0));
    assert_eq!(metric("body_too_large"), Some(0.0));
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let text = send(
        &s,
        &format!("GET /x HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
        &[],
    );
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert!(text.contains("\"too_many_headers\""), "{text}");
    let text = send(
        &s,
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
        &[],
    );
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(metric("too_many_headers"), Some(1.0));
    assert_eq!(metric("body_too_large"), Some(1.0));
    assert_eq!(up.hits(), 0);
}
