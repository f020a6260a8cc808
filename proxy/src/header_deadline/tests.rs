//! The header deadline and the idle wait, on in-memory streams.

use super::*;
use std::io::Cursor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn stream(input: &[u8]) -> DeadlineStream {
    let deadline = Duration::from_secs(1);
    DeadlineStream::new(
        Box::new(Cursor::new(input.to_vec())),
        deadline,
        Instant::now() + deadline,
    )
}

/// Reads `n` bytes, `step` at a time, returning the phase after each read.
async fn phases(s: &mut DeadlineStream, n: usize, step: usize) -> Vec<Phase> {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let mut buf = vec![0u8; step.min(left)];
        let got = s.read(&mut buf).await.expect("read");
        assert!(got > 0);
        left -= got;
        out.push(s.phase);
    }
    out
}

#[tokio::test]
async fn the_header_ends_at_a_blank_line_even_split_across_reads() {
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody";
    let mut s = stream(request);
    let seen = phases(&mut s, request.len() - 4, 1).await;
    assert_eq!(seen.last(), Some(&Phase::Body));
    assert!(seen[..seen.len() - 1]
        .iter()
        .all(|p| matches!(p, Phase::Header { .. })));
    // "\r\n" inside the header, and "\r\r\n\r\n", are not an end too early.
    let mut s = stream(b"GET / HTTP/1.1\r\r\n\r\n");
    assert_eq!(phases(&mut s, 19, 19).await, [Phase::Body]);
}

#[tokio::test]
async fn a_response_restarts_the_deadline_at_the_next_request_and_101_or_h2_end_it() {
    // A cursor reads and writes at one position: the response overwrites 19 bytes of
    // padding, and the next read starts after them.
    let mut s = stream(b"GET / HTTP/1.1\r\n\r\n...................GET /2 HTTP/1.1\r\n");
    phases(&mut s, 18, 18).await;
    s.write_all(b"HTTP/1.1 200 OK\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(s.phase, Phase::Answered);
    assert_eq!(phases(&mut s, 4, 4).await, [Phase::Header { matched: 0 }]);

    let mut s = stream(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    phases(&mut s, 40, 40).await;
    s.write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(s.phase, Phase::Off);

    let mut s = stream(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00");
    assert_eq!(phases(&mut s, 26, 26).await, [Phase::Off]);
}

#[tokio::test]
async fn the_first_header_read_ahead_is_served_back_in_order() {
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody";
    let mut s = stream(request);
    s.read_ahead().await.expect("read ahead");
    assert_eq!(s.phase, Phase::Body);
    let mut peeked = [0u8; 3];
    assert!(s.try_peek(&mut peeked).await.expect("peek"));
    assert_eq!(&peeked, b"GET");
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.expect("read");
    assert_eq!(all, request);
    // A client that goes away mid-header is an error, not a header.
    let mut s = stream(b"GET / HTTP/1.1\r\nHo");
    assert!(s.read_ahead().await.is_err());
}

/// A stream on one end of an in-memory pipe, just after a response was written.
fn answered(server: tokio::io::DuplexStream) -> DeadlineStream {
    let deadline = Duration::from_secs(1);
    let mut s = DeadlineStream::new(Box::new(server), deadline, Instant::now() + deadline);
    s.phase = Phase::Answered;
    s
}

#[tokio::test(start_paused = true)]
async fn between_requests_a_connection_waits_for_a_byte_up_to_the_idle_timeout() {
    let idle = Duration::from_secs(5);
    let (_client, server) = tokio::io::duplex(64);
    let mut s = answered(server);
    let started = Instant::now();
    assert!(!s.await_request(idle).await, "a silent client times out");
    assert!(started.elapsed() >= idle);

    let (mut client, server) = tokio::io::duplex(64);
    let mut s = answered(server);
    client
        .write_all(b"GET /2 HTTP/1.1\r\n")
        .await
        .expect("write");
    assert!(s.await_request(idle).await);
    // The header deadline runs from that first byte, and the bytes are served back.
    assert!(matches!(s.phase, Phase::Header { .. }), "{:?}", s.phase);
    let mut head = [0u8; 6];
    s.read_exact(&mut head).await.expect("read");
    assert_eq!(&head, b"GET /2");

    let (client, server) = tokio::io::duplex(64);
    let mut s = answered(server);
    drop(client);
    assert!(!s.await_request(idle).await, "a client that closed");
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_closes_when_the_server_stops_and_a_request_is_served() {
    let (_client, server) = tokio::io::duplex(64);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let waiting =
        tokio::spawn(async move { next_request(Box::new(answered(server)), &shutdown).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).expect("send");
    let closed = waiting.await.expect("join");
    assert!(closed.is_none());

    // Stopping, but the request is there already: it goes on to be served.
    let (mut client, server) = tokio::io::duplex(64);
    client
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    let (_stop, shutdown) = tokio::sync::watch::channel(true);
    let next = next_request(Box::new(answered(server)), &shutdown).await;
    assert!(next.is_some_and(|s| s.as_any().is::<DeadlineStream>()));
}
