//! WebSocket through sluice with a real server and client (tokio-tungstenite): 1,000
//! messages each way over HTTP and over TLS, the route switch, the idle timeout, one
//! request per connection in the metrics, and open sockets living through a graceful stop.

mod common;

use futures_util::{SinkExt, StreamExt};
use sluice_testkit::services::Sluice;
use sluice_testkit::tls::TestCa;
use sluice_testkit::{assert_eventually, free_port, http};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// An echo server: WebSocket upgrades echo every message; any other request (the health
/// check) is answered 200.
fn echo_server() -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
    });
    addr
}

async fn serve(mut stream: TcpStream) {
    let mut head = vec![0u8; 4096];
    let n = loop {
        let Ok(n) = stream.peek(&mut head).await else {
            return;
        };
        if n == 0 || head[..n].windows(4).any(|w| w == b"\r\n\r\n") || n == head.len() {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let text = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    if !text.contains("upgrade: websocket") {
        let mut buf = vec![0u8; n];
        let _ = stream.read_exact(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
        return;
    }
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            break;
        }
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

fn config(upstream: SocketAddr, tls: Option<(u16, &TestCa)>) -> String {
    let tls = tls.map_or(String::new(), |(port, ca)| {
        format!(
            "  tls:\n    listen: \"127.0.0.1:{port}\"\n    certificates:\n      - {{ cert: \"{}\", key: \"{}\" }}\n",
            ca.dir().join("server.pem").display(),
            ca.dir().join("server.key").display()
        )
    });
    format!(
        "server:\n  listen: \"{{listen}}\"\n  admin_listen: \"{{admin}}\"\n  threads: 2\n  grace_period_s: 3\n{tls}\
         upstreams:\n  echo:\n    peers: [\"{upstream}\"]\n    health_check: {{ path: /health, interval_ms: 200, timeout_ms: 500, healthy_after: 1, unhealthy_after: 2 }}\n\
         routes:\n  - {{ name: ws, path_prefix: /ws, upstream: echo, websocket: true }}\n  \
         - {{ name: quiet, path_prefix: /quiet, upstream: echo, websocket: true, websocket_idle_timeout_s: 1 }}\n  \
         - {{ name: plain, path_prefix: /, upstream: echo }}\n"
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sends `n` messages one at a time on `ws`, each answered by its echo.
async fn exchange<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, n: usize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for i in 0..n {
        let text = format!("message {i}");
        ws.send(Message::text(text.clone())).await.expect("send");
        let got = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("an echo within 5 s")
            .expect("the socket stays open")
            .expect("a frame");
        assert_eq!(got.into_text().expect("text").as_str(), text);
    }
}

/// A WebSocket to `path` through `s`'s plain listener, checked with `n` echoes.
async fn open(
    s: &Sluice,
    path: &str,
    n: usize,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let url = format!("ws://{}{path}", s.proxy);
    let (mut ws, response) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("a WebSocket through sluice");
    assert_eq!(response.status().as_u16(), 101);
    exchange(&mut ws, n).await;
    ws
}

fn requests(s: &Sluice, route: &str, status: u16) -> f64 {
    common::series(
        s,
        &format!("sluice_requests_total{{route=\"{route}\",status=\"{status}\"}}"),
    )
    .unwrap_or(0.0)
}

#[test]
fn a_thousand_messages_echo_through_sluice_over_http_and_over_tls() {
    let ca = TestCa::new();
    ca.issue("server", 7, 2, "DNS:localhost,IP:127.0.0.1");
    let tls_port = free_port();
    let s = Sluice::start(&config(echo_server(), Some((tls_port, &ca))));
    assert_eventually!(
        Duration::from_secs(10),
        http::get(s.proxy, "/health").is_ok_and(|r| r.status == 200),
        "the echo upstream never became healthy"
    );
    let rt = runtime();
    rt.block_on(async {
        let mut ws = open(&s, "/ws/echo", 1000).await;
        ws.close(None).await.expect("close");

        let pem = std::fs::read(ca.ca_pem()).expect("ca");
        let connector = native_tls::TlsConnector::builder()
            .add_root_certificate(native_tls::Certificate::from_pem(&pem).expect("ca pem"))
            .build()
            .expect("tls connector");
        let stream = TcpStream::connect(("127.0.0.1", tls_port))
            .await
            .expect("connect");
        let (mut wss, response) = tokio_tungstenite::client_async_tls_with_config(
            format!("wss://localhost:{tls_port}/ws/echo"),
            stream,
            None,
            Some(tokio_tungstenite::Connector::NativeTls(connector)),
        )
        .await
        .expect("a WebSocket over TLS through sluice");
        assert_eq!(response.status().as_u16(), 101);
        exchange(&mut wss, 1000).await;
        wss.close(None).await.expect("close");
    });
    assert_eventually!(
        Duration::from_secs(5),
        requests(&s, "ws", 101) == 2.0,
        "each connection is one request in the metrics"
    );
}

#[test]
fn an_upgrade_on_a_route_without_websocket_is_refused_with_400() {
    let s = Sluice::start(&config(echo_server(), None));
    let headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    let r = http::request(s.proxy, "GET", "/other", &headers, None).expect("GET");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("websocket_not_allowed"), "{}", r.body);
}

#[test]
fn a_silent_websocket_is_closed_after_its_idle_timeout() {
    let s = Sluice::start(&config(echo_server(), None));
    let rt = runtime();
    rt.block_on(async {
        let mut ws = open(&s, "/quiet/echo", 3).await;
        let silent = Instant::now();
        // Nothing is sent: the route's 1 s idle timeout ends the connection.
        let end = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ws.next().await {
                    None | Some(Err(_)) => break,
                    Some(Ok(m)) if m.is_close() => break,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(end.is_ok(), "the idle socket was never closed");
        let after = silent.elapsed();
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(5),
            "closed after {after:?}, the idle timeout is 1 s"
        );
    });
}

#[test]
fn an_open_websocket_keeps_working_through_the_grace_period_of_a_stop() {
    let mut s = Sluice::start(&config(echo_server(), None));
    let rt = runtime();
    rt.block_on(async {
        let mut ws = open(&s, "/ws/echo", 10).await;
        s.process.signal("TERM");
        // Within the 3 s grace period the socket carries on.
        let until = Instant::now() + Duration::from_millis(1500);
        let mut n = 0;
        while Instant::now() < until {
            exchange(&mut ws, 1).await;
            n += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(n > 20, "only {n} exchanges during the grace period");
    });
    let status = s.process.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some(),
        "sluice did not exit after the grace period"
    );
}

#[test]
fn an_open_websocket_keeps_working_through_a_reload() {
    let s = Sluice::start(&config(echo_server(), None));
    let rt = runtime();
    rt.block_on(async {
        let mut ws = open(&s, "/ws/echo", 10).await;
        // A reload that changes the routes: the open socket keeps its connection.
        let path = s.config_path();
        let text = std::fs::read_to_string(&path).expect("config");
        std::fs::write(&path, text.replace("name: plain", "name: plain-renamed"))
            .expect("write config");
        s.process.signal("HUP");
        sluice_testkit::assert_eventually!(
            Duration::from_secs(5),
            common::series(&s, "sluice_config_reloads_total{result=\"ok\"}") == Some(1.0),
            "the reload did not happen"
        );
        exchange(&mut ws, 100).await;
        ws.close(None).await.expect("close");
    });
}
