//! Helpers shared by the integration tests.
#![allow(dead_code)]

use serde_json::Value;
use sluice_testkit::http::{self, Response};
use sluice_testkit::services::Sluice;
use sluice_testkit::{ADMIN_AUTH, ADMIN_TOKEN_SHA256};

/// A config with one catch-all route `r` to `upstream` and no Redis, Kafka or admin token.
pub fn one_route_config(upstream: &str) -> String {
    format!(
        "server: {{ listen: \"{{listen}}\", admin_listen: \"{{admin}}\", threads: 2, grace_period_s: 1 }}\n\
         upstreams:\n  g: {{ peers: [\"{upstream}\"] }}\n\
         routes:\n  - {{ name: r, path_prefix: /, upstream: g }}\n"
    )
}

/// A config with Redis at `redis_url`, one upstream `upstream`, a keyed route `/api/`
/// (prefix stripped), an open route `/open`, and a per-IP limited route `/ip`.
pub fn keyed_config(redis_url: &str, upstream: &str, on_redis_error: &str) -> String {
    format!(
        r#"server: {{ listen: "{{listen}}", admin_listen: "{{admin}}", threads: 2, grace_period_s: 1 }}
admin: {{ token_sha256: "{ADMIN_TOKEN_SHA256}" }}
redis: {{ url: "{redis_url}", timeout_ms: 20 }}
tiers:
  free: {{ rate_per_s: 10, burst: 100 }}
  exact: {{ rate_per_s: 100, burst: 100 }}
  tiny: {{ rate_per_s: 1, burst: 5 }}
  fast: {{ rate_per_s: 1000, burst: 1000 }}
ratelimit: {{ on_redis_error: {on_redis_error}, expected_instances: 1 }}
upstreams:
  g: {{ peers: ["{upstream}"] }}
routes:
  - {{ name: keyed, path_prefix: /api/, strip_prefix: true, upstream: g, auth: api_key }}
  - {{ name: open, path_prefix: /open, upstream: g }}
  - {{ name: per-ip, path_prefix: /ip, upstream: g, ratelimit: ip, ratelimit_tier: tiny }}
"#
    )
}

/// An admin API call with the test token; the body parsed as JSON (Null when empty).
pub fn admin(s: &Sluice, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut headers = vec![ADMIN_AUTH];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let r = http::request(s.admin, method, path, &headers, body).expect("admin request");
    let value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, value)
}

/// Creates a key of `tier`; returns (id, plaintext key). Right after start, sluice may
/// still be connecting to Redis and answer 503 "try again shortly": it is retried then.
pub fn create_key(s: &Sluice, tier: &str) -> (String, String) {
    let body = format!(r#"{{"name":"test","tier":"{tier}"}}"#);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (status, v) = loop {
        let (status, v) = admin(s, "POST", "/admin/keys", Some(&body));
        if status != 503 || std::time::Instant::now() >= deadline {
            break (status, v);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status, 201, "{v}");
    (
        v["id"].as_str().expect("id").to_string(),
        v["key"].as_str().expect("key").to_string(),
    )
}

/// GET `path` through sluice with `key` in X-API-Key.
pub fn call(s: &Sluice, path: &str, key: &str) -> Response {
    http::request(s.proxy, "GET", path, &[("X-API-Key", key)], None)
        .expect("request through sluice")
}

/// The value of the first metric line starting with `prefix` (0 when absent).
/// How long until `check` first holds, polling every 10 ms for at most `limit` (`None`:
/// it never did). For "another instance enforces it within a second" figures.
pub fn time_until(
    limit: std::time::Duration,
    mut check: impl FnMut() -> bool,
) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if check() {
            return Some(started.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// The value of the series named exactly `series` (`name{labels}`), `None` when sluice
/// does not export it.
pub fn series(s: &Sluice, series: &str) -> Option<f64> {
    let text = http::get(s.admin, "/metrics").expect("metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The sum of every metric line starting with `prefix` (0 when absent).
pub fn metric(s: &Sluice, prefix: &str) -> f64 {
    let text = http::get(s.admin, "/metrics").expect("metrics").body;
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Milliseconds the named stage took, from `Server-Timing`.
pub fn stage_ms(r: &Response, stage: &str) -> Option<f64> {
    let header = r.header("server-timing")?;
    header.split(',').find_map(|part| {
        let (name, dur) = part.trim().split_once(";dur=")?;
        (name == stage).then(|| dur.parse().ok()).flatten()
    })
}

/// A connection to `to` bound to source address `from` (std cannot bind before
/// connecting; tokio's `TcpSocket` can).
pub fn connect_from(from: &str, to: std::net::SocketAddr) -> std::net::TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{from}:0").parse().expect("addr"))
            .expect("bind the source address");
        let stream = socket.connect(to).await.expect("connect");
        let stream = stream.into_std().expect("std stream");
        stream.set_nonblocking(false).expect("blocking");
        stream
    })
}

/// Eight clients hammer `key` through instances `a` and `b` (alternating) for `run_for`;
/// the admitted requests must be within 2% of burst + rate x elapsed, every 429 must carry
/// `Retry-After: 1` and a `RateLimit-Policy` starting with `policy`, and nothing but 200
/// and 429 may come back.
pub fn assert_exact_limit(
    a: std::sync::Arc<Sluice>,
    b: std::sync::Arc<Sluice>,
    key: String,
    rate: f64,
    burst: f64,
    run_for: std::time::Duration,
    policy: &str,
) {
    use std::sync::Arc;
    use std::time::Instant;
    // One hammer at a time in a test binary: two at once share the two cores and neither
    // reaches the load its limit needs (seen: "the clients were too slow", 891 limited).
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let key = Arc::new(key);
    let start = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (a, b, key) = (a.clone(), b.clone(), key.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let mut n = i;
                while start.elapsed() < run_for {
                    let s = if n % 2 == 0 { &a } else { &b };
                    n += 1;
                    let sent = Instant::now();
                    let r = call(s, "/api/x", &key);
                    out.push((
                        sent,
                        Instant::now(),
                        r.status,
                        r.header("retry-after").map(str::to_string),
                        r.header("ratelimit-policy").map(str::to_string),
                        // Kept for the failure message only.
                        if r.status == 200 || r.status == 429 {
                            String::new()
                        } else {
                            r.body.clone()
                        },
                    ));
                }
                out
            })
        })
        .collect();
    let results: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    // The limit refills while requests arrive: from the first request sent to the last
    // one sent. Not to the last answer: a straggler's slow answer after every other client
    // has stopped adds refill time that no request was there to spend (a 90 ms straggler
    // is 2 % of the fast tier's 3 s run: the shortfalls CI saw, 2.17-2.31 %, fit that).
    let first = results.iter().map(|r| r.0).min().expect("requests");
    let last_sent = results.iter().map(|r| r.0).max().expect("requests");
    let last_answer = results.iter().map(|r| r.1).max().expect("requests");
    let straggler_ms = last_answer.duration_since(last_sent).as_secs_f64() * 1000.0;
    let elapsed = last_sent.duration_since(first).as_secs_f64();
    let admitted = results.iter().filter(|r| r.2 == 200).count() as f64;
    let limited: Vec<_> = results.iter().filter(|r| r.2 == 429).collect();
    let others: Vec<(u16, &str)> = results
        .iter()
        .filter(|r| r.2 != 200 && r.2 != 429)
        .map(|r| (r.2, r.5.as_str()))
        .collect();
    assert!(others.is_empty(), "unexpected statuses: {others:?}");
    assert!(
        limited.len() > 1000,
        "the clients were too slow to test the limit: {} limited",
        limited.len()
    );
    let expected = burst + rate * elapsed;
    let error = (admitted - expected).abs() / expected;
    let modes: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|s| {
            ["redis", "local"].map(|mode| {
                let n = metric(
                    s,
                    &format!(
                        "sluice_ratelimit_decisions_total{{decision=\"allowed\",mode=\"{mode}\""
                    ),
                );
                format!("{mode}={n}")
            })
        })
        .collect();
    eprintln!(
        "exactness: admitted {admitted}, expected {expected:.1}, error {:.2}%, limited {}, last answer {straggler_ms:.1} ms after the last request",
        error * 100.0,
        limited.len()
    );
    assert!(
        error <= 0.02,
        "admitted {admitted} vs expected {expected:.0} (burst {burst} + {rate}/s x {elapsed:.2}s): off by {:.1}%; allowed by mode per instance: {modes:?}",
        error * 100.0
    );
    // At these rates the next token is at most 10 ms away: Retry-After rounds up to 1 s.
    assert!(
        limited.iter().all(|r| r.3.as_deref() == Some("1")),
        "every 429 carries Retry-After: 1"
    );
    assert!(
        limited
            .iter()
            .all(|r| r.4.as_deref().is_some_and(|p| p.starts_with(policy))),
        "every 429 names the policy {policy}: {:?}",
        limited.first().map(|r| &r.4)
    );
}
