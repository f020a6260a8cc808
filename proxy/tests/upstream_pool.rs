//! sluice's pool of idle HTTP/1 upstream connections (vendor/pingora-proxy's `h1_pool`),
//! against a raw TCP upstream that counts its connections and closes them in the ways
//! real servers do: a connection is reused, one its server closed is never used for a
//! request, one its server half-closed is closed by sluice too, and one that speaks
//! unasked is dropped.

mod common;

use common::one_route_config;
use sluice_testkit::http;
use sluice_testkit::services::Sluice;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the upstream does with a connection after answering a request on it.
#[derive(Clone, Copy)]
enum After {
    /// Waits for the next request.
    KeepOpen,
    /// Closes the connection (without saying so in the response).
    Close,
    /// Shuts down its sending side once the connection sits idle in sluice's pool, then
    /// reports how long until sluice closes its own.
    HalfClose,
    /// Sends bytes nobody asked for, then waits for the next request.
    Chatter,
}

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct RawUpstream {
    addr: SocketAddr,
    /// Connections that carried a proxied request (sluice's health checks, which come
    /// on connections of their own, are answered and not counted).
    accepted: Arc<AtomicUsize>,
    /// For `HalfClose`: per connection, the time from its half-close to sluice's close.
    closed_after: mpsc::Receiver<Duration>,
}

impl RawUpstream {
    fn start(after: After) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let (report, closed_after) = mpsc::channel();
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (counter, report) = (counter.clone(), report.clone());
                std::thread::spawn(move || serve(conn, after, &counter, &report));
            }
        });
        RawUpstream {
            addr,
            accepted,
            closed_after,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads one request head; `None` when the connection ended first.
fn read_head(conn: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn serve(
    mut conn: TcpStream,
    after: After,
    accepted: &AtomicUsize,
    report: &mpsc::Sender<Duration>,
) {
    let mut first = true;
    while let Some(head) = read_head(&mut conn) {
        if conn.write_all(RESPONSE).is_err() {
            return;
        }
        if head.starts_with("GET /health ") {
            return;
        }
        if std::mem::take(&mut first) {
            accepted.fetch_add(1, Ordering::SeqCst);
        }
        match after {
            After::KeepOpen => {}
            After::Close => return,
            After::HalfClose => {
                // Later than sluice's own check when it takes the connection back.
                std::thread::sleep(Duration::from_millis(300));
                let _ = conn.shutdown(Shutdown::Write);
                let since = Instant::now();
                let mut rest = Vec::new();
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                // EOF (or a reset) is sluice closing its side.
                let _ = conn.read_to_end(&mut rest);
                let _ = report.send(since.elapsed());
                return;
            }
            After::Chatter => {
                std::thread::sleep(Duration::from_millis(20));
                if conn.write_all(b"unasked").is_err() {
                    return;
                }
            }
        }
    }
}

fn get_ok(s: &Sluice) {
    let r = http::get(s.proxy, "/x").expect("GET through sluice");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "ok");
}

#[test]
fn sequential_requests_share_one_upstream_connection() {
    let up = RawUpstream::start(After::KeepOpen);
    let s = Sluice::start(&one_route_config(&up.addr.to_string()));
    for _ in 0..20 {
        get_ok(&s);
    }
    assert_eq!(
        up.accepted(),
        1,
        "each request should reuse the idle connection"
    );
}

#[test]
fn a_connection_its_upstream_closed_is_never_used_for_a_request() {
    let up = RawUpstream::start(After::Close);
    let s = Sluice::start(&one_route_config(&up.addr.to_string()));
    for _ in 0..10 {
        get_ok(&s);
        // Time for the FIN to arrive: the connection is then seen closed when taken.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(up.accepted(), 10);
}

#[test]
fn an_idle_connection_its_upstream_half_closed_is_closed_by_sluice_too() {
    let up = RawUpstream::start(After::HalfClose);
    let s = Sluice::start(&one_route_config(&up.addr.to_string()));
    get_ok(&s);
    // No further request comes, so only the pool's sweep can notice.
    let waited = up
        .closed_after
        .recv_timeout(Duration::from_secs(10))
        .expect("sluice kept the half-closed upstream connection open for 10 s");
    assert!(
        waited < Duration::from_secs(5),
        "sluice closed its side {waited:?} after the upstream's"
    );
    get_ok(&s);
    assert_eq!(up.accepted(), 2);
}

#[test]
fn an_idle_connection_that_speaks_unasked_is_dropped() {
    let up = RawUpstream::start(After::Chatter);
    let s = Sluice::start(&one_route_config(&up.addr.to_string()));
    get_ok(&s);
    std::thread::sleep(Duration::from_millis(200));
    // The unasked bytes must not be read as this request's response.
    get_ok(&s);
    assert_eq!(up.accepted(), 2);
}
