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
