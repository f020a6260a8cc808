//! The gateway against fake upstreams: routing, round robin, prefix stripping, retries
//! on connect failure, health checks, JSON errors, metrics and the admin listener.

mod common;

use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::http::{self, Response};
use sluice_testkit::services::Sluice;
use sluice_testkit::{assert_eventually, free_port, ADMIN_AUTH, ADMIN_TOKEN_SHA256};
use std::collections::HashSet;
use std::time::Duration;

fn config(groups: &str, routes: &str) -> String {
    format!(
        "server:\n  listen: \"{{listen}}\"\n  admin_listen: \"{{admin}}\"\n  threads: 1\n  grace_period_s: 1\n\
         admin: {{ token_sha256: \"{ADMIN_TOKEN_SHA256}\" }}\n\
         upstreams:\n{groups}\nroutes:\n{routes}\n"
    )
}

fn group(name: &str, peers: &[String], interval_ms: u64) -> String {
    group_with(name, peers, interval_ms, 1)
}

fn group_with(name: &str, peers: &[String], interval_ms: u64, unhealthy_after: u32) -> String {
    let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "  {name}:\n    peers: [{}]\n    health_check: {{ path: /health, interval_ms: {interval_ms}, timeout_ms: 200, healthy_after: 1, unhealthy_after: {unhealthy_after} }}\n    retries: 2\n",
        peers.join(", ")
    )
}

fn get(s: &Sluice, path: &str) -> Response {
    http::get(s.proxy, path).expect("request through sluice")
}

#[test]
fn unknown_paths_get_a_json_404() {
    let a = FakeUpstream::start("a");
    let s = Sluice::start(&config(
        &group("g", &[a.addr.to_string()], 1000),
        "  - { name: r, path_prefix: /app, upstream: g }",
    ));
    let r = get(&s, "/elsewhere");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body,
        r#"{"error":"no_route","message":"no route matches GET /elsewhere"}"#
    );
    assert_eq!(a.hits(), 0);
}

#[test]
fn requests_alternate_between_peers_and_name_them() {
    let (a, b) = (FakeUpstream::start("a"), FakeUpstream::start("b"));
    let s = Sluice::start(&config(
        &group("g", &[a.addr.to_string(), b.addr.to_string()], 1000),
        "  - { name: r, path_prefix: /, upstream: g }",
    ));
    let peers: Vec<String> = (0..6)
        .map(|_| {
            get(&s, "/x")
                .header("x-sluice-upstream")
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for pair in peers.windows(2) {
        assert_ne!(pair[0], pair[1], "round robin must alternate: {peers:?}");
    }
    let seen: HashSet<&String> = peers.iter().collect();
    let expected: HashSet<String> = [a.addr.to_string(), b.addr.to_string()].into();
    assert_eq!(seen, expected.iter().collect());
}

#[test]
fn longest_prefix_and_host_pick_the_route_and_strip_prefix_rewrites_the_path() {
    let (a, b, c) = (
        FakeUpstream::start("a"),
        FakeUpstream::start("b"),
        FakeUpstream::start("c"),
    );
    let groups = [
        group("ga", &[a.addr.to_string()], 1000),
        group("gb", &[b.addr.to_string()], 1000),
        group("gc", &[c.addr.to_string()], 1000),
    ]
    .concat();
    let s = Sluice::start(&config(
        &groups,
        "  - { name: root, path_prefix: /, upstream: ga }\n  - { name: api, path_prefix: /api/, strip_prefix: true, upstream: gb }\n  - { name: host, host: example.com, path_prefix: /api/, upstream: gc }",
    ));
    assert_eq!(get(&s, "/todos").body, "a /todos");
    assert_eq!(get(&s, "/api/todos?limit=2").body, "b /todos?limit=2");
    let r = http::request(
        s.proxy,
        "GET",
        "/api/x",
        &[("Host", "Example.com:80")],
        None,
    )
    .expect("request");
    assert_eq!(r.body, "c /api/x");
    let r =
        http::request(s.proxy, "GET", "/api/x", &[("Host", "other.org")], None).expect("request");
    assert_eq!(r.body, "b /x");
}

#[test]
fn a_refused_connection_is_retried_on_another_peer() {
    let a = FakeUpstream::start("a");
    let dead = format!("127.0.0.1:{}", free_port());
    // Health checks that need 100 failures keep the dead peer "healthy", so only
    // retries can save these requests.
    let s = Sluice::start(&config(
        &group_with("g", &[dead, a.addr.to_string()], 60_000, 100),
        "  - { name: r, path_prefix: /, upstream: g }",
    ));
    for _ in 0..10 {
        let r = get(&s, "/x");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, "a /x");
    }
    let metrics = http::get(s.admin, "/metrics").expect("metrics").body;
    let value = |prefix: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let retries = value("sluice_retries_total{upstream=\"g\"}");
    let refused = value("sluice_upstream_requests_total{outcome=\"connect_error\"");
    assert!(
        retries >= 1,
        "the dead peer must have been tried: {metrics}"
    );
    assert_eq!(
        retries, refused,
        "every refused attempt was retried: {metrics}"
    );
}

#[test]
fn unhealthy_peers_get_no_traffic_and_none_left_means_503() {
    let (a, b) = (FakeUpstream::start("a"), FakeUpstream::start("b"));
    let s = Sluice::start(&config(
        &group("g", &[a.addr.to_string(), b.addr.to_string()], 100),
        "  - { name: r, path_prefix: /, upstream: g }",
    ));
    b.set_status(500);
    // b's breaker may take it out of rotation first (its 500s count); the health checks
    // must mark it unhealthy all the same.
    let upstreams = || {
        http::request(s.admin, "GET", "/admin/upstreams", &[ADMIN_AUTH], None)
            .expect("admin")
            .body
    };
    let b_unhealthy = || {
        let v: serde_json::Value = serde_json::from_str(&upstreams()).unwrap_or_default();
        v["upstreams"]["g"]["peers"]
            .as_array()
            .is_some_and(|peers| {
                peers
                    .iter()
                    .any(|p| p["peer"] == b.addr.to_string().as_str() && p["healthy"] == false)
            })
    };
    assert_eventually!(
        Duration::from_secs(3),
        b_unhealthy(),
        "b should be marked unhealthy by its failing health checks: {}",
        upstreams()
    );
    assert!(
        (0..4).all(|_| get(&s, "/x").body == "a /x"),
        "an unhealthy b must get no traffic"
    );

    a.set_status(503);
    assert_eventually!(
        Duration::from_secs(3),
        get(&s, "/x").status == 503 && get(&s, "/x").body.contains("no_healthy_upstream"),
        "no healthy peer must give 503 no_healthy_upstream"
    );
    let r = get(&s, "/x");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.body
            .contains(r#""message":"no healthy peer in upstream \"g\"""#),
        "{}",
        r.body
    );

    b.set_status(200);
    assert_eventually!(
        Duration::from_secs(3),
        get(&s, "/x").body == "b /x",
        "b must come back"
    );
}

#[test]
fn all_peers_refusing_gives_a_json_502() {
    let dead1 = format!("127.0.0.1:{}", free_port());
    let dead2 = format!("127.0.0.1:{}", free_port());
    let s = Sluice::start(&config(
        &group_with("g", &[dead1, dead2], 60_000, 100),
        "  - { name: r, path_prefix: /, upstream: g }",
    ));
    let r = get(&s, "/x");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(
        r.body.starts_with(r#"{"error":"upstream_error""#),
        "{}",
        r.body
    );
}

#[test]
fn metrics_count_requests_by_route_and_status() {
    let a = FakeUpstream::start("a");
    let s = Sluice::start(&config(
        &group("g", &[a.addr.to_string()], 1000),
        "  - { name: app, path_prefix: /app, upstream: g }",
    ));
    for _ in 0..3 {
        assert_eq!(get(&s, "/app/1").status, 200);
    }
    assert_eq!(get(&s, "/nope").status, 404);
    let metrics = http::get(s.admin, "/metrics").expect("metrics").body;
    assert!(
        metrics.contains("sluice_requests_total{route=\"app\",status=\"200\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_requests_total{route=\"none\",status=\"404\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_request_duration_seconds_count{route=\"app\"} 3"),
        "{metrics}"
    );
    let peer = a.addr.to_string();
    assert!(
        metrics.contains(&format!(
            "sluice_upstream_healthy{{peer=\"{peer}\",upstream=\"g\"}} 1"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "sluice_upstream_requests_total{{outcome=\"ok\",peer=\"{peer}\",upstream=\"g\"}} 3"
        )),
        "{metrics}"
    );
}

#[test]
fn the_upstream_header_can_be_turned_off() {
    let a = FakeUpstream::start("a");
    let yaml = config(
        &group("g", &[a.addr.to_string()], 1000),
        "  - { name: r, path_prefix: /, upstream: g }",
    )
    .replace("  threads: 1\n", "  threads: 1\n  upstream_header: false\n");
    let s = Sluice::start(&yaml);
    let r = get(&s, "/x");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-sluice-upstream"), None);
}

/// Sends a GET for `path` from source address `from` (a loopback address: all of
/// 127.0.0.0/8 is on `lo`); returns the status and body.
fn get_from(from: &str, proxy: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = common::connect_from(from, proxy);
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn ip_rules_allow_and_deny_by_client_address() {
    let up = FakeUpstream::start("up");
    let peers = [up.addr.to_string()];
    let s = Sluice::start(&config(
        &group("g", &peers, 1000),
        r#"  - { name: open, path_prefix: /, upstream: g }
  - { name: purge, path_prefix: /purge-payments, upstream: g, allow: [127.0.0.1/32] }
  - { name: control, path_prefix: /demo/admin, upstream: g, deny: [0.0.0.0/0, "::/0"] }
  - { name: office, path_prefix: /office, upstream: g, allow: [127.0.0.0/8], deny: [127.0.0.3] }"#,
    ));
    let before = up.hits();
    let (status, body) = get_from("127.0.0.2", s.proxy, "/purge-payments");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"ip_denied\""), "{body}");
    assert_eq!(up.hits(), before, "a denied request reached the upstream");
    assert_eq!(get_from("127.0.0.1", s.proxy, "/purge-payments").0, 200);
    assert_eq!(get_from("127.0.0.1", s.proxy, "/demo/admin/config").0, 403);
    // Other spellings of the denied path are the same path (upstreams read them so).
    for spelling in [
        "/demo//admin/config",
        "/demo/./admin",
        "/demo/x/../admin",
        "/demo/%61dmin",
    ] {
        assert_eq!(
            get_from("127.0.0.1", s.proxy, spelling).0,
            403,
            "{spelling}"
        );
    }
    let (status, body) = get_from("127.0.0.1", s.proxy, "/a/../../etc/passwd");
    assert_eq!(status, 400, "{body}");
    assert_eq!(get_from("127.0.0.2", s.proxy, "/office").0, 200);
    assert_eq!(
        get_from("127.0.0.3", s.proxy, "/office").0,
        403,
        "deny wins over allow"
    );
    assert_eq!(get_from("127.0.0.2", s.proxy, "/anything").0, 200);
    let metrics = http::get(s.admin, "/metrics").expect("metrics").body;
    assert!(
        metrics.contains("sluice_refusals_total{reason=\"ip_denied\"} 7"),
        "{metrics}"
    );
}
