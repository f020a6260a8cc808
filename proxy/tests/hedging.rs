//! Hedged requests with real processes: sluice in front of two controllable upstreams,
//! one of which delays 10% of its requests by 300 ms.

use sluice_testkit::http;
use sluice_testkit::services::{Sluice, TestUpstream};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(fast: &TestUpstream, slow: &TestUpstream) -> String {
    format!(
        r#"server: {{ listen: "{{listen}}", admin_listen: "{{admin}}", threads: 2, grace_period_s: 1 }}
upstreams:
  g:
    peers: ["{}", "{}"]
    health_check: {{ path: /health, interval_ms: 1000, timeout_ms: 300, healthy_after: 1, unhealthy_after: 3 }}
routes:
  - {{ name: hedged, path_prefix: /h, upstream: g, hedge: {{ delay: p95, min_delay_ms: 10, max_extra_percent: 10 }} }}
  - {{ name: plain, path_prefix: /n, upstream: g }}
"#,
        fast.addr, slow.addr
    )
}

/// `total` GETs of `path` from 8 concurrent clients; each request's latency.
fn drive(s: &Arc<Sluice>, path: &'static str, total: usize) -> Vec<Duration> {
    let per_client = total / 8;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                (0..per_client)
                    .map(|_| {
                        let started = Instant::now();
                        let r = http::get(s.proxy, path).expect("GET");
                        assert_eq!(r.status, 200, "{}", r.body);
                        started.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect()
}

fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99).div_ceil(100) - 1]
}

#[test]
fn hedging_cuts_the_slow_tail_within_its_budget_and_cancels_the_loser() {
    let (fast, slow) = (TestUpstream::start(), TestUpstream::start());
    slow.configure(r#"{"delay_ms":300,"delay_percent":10}"#);
    let s = Arc::new(Sluice::start(&config(&fast, &slow)));

    let unhedged = p99(drive(&s, "/n/x", 2000));
    assert!(
        unhedged > Duration::from_millis(250),
        "without hedging the slow tail shows: p99 {unhedged:?}"
    );

    fast.reset();
    slow.reset();
    let hedged = p99(drive(&s, "/h/x", 2000));
    let (fast_received, _, _) = fast.stats();
    let (slow_received, _, slow_gone) = slow.stats();
    let extra = (fast_received + slow_received) as f64 / 2000.0 - 1.0;
    eprintln!("p99 unhedged {unhedged:?}, hedged {hedged:?}; extra upstream requests {:.1}%; slow peer saw {slow_gone} clients go away", extra * 100.0);
    assert!(
        hedged < Duration::from_millis(50),
        "with hedging p99 must drop under 50 ms: {hedged:?}"
    );
    assert!(
        extra <= 0.11,
        "hedges must stay within budget: {:.1}% extra",
        extra * 100.0
    );
    assert!(
        slow_gone > 0,
        "the slow peer must see the cancelled attempts go away"
    );
    let metrics = http::get(s.admin, "/metrics").expect("metrics").body;
    assert!(
        metrics.contains("sluice_hedges_total{result=\"won\",upstream=\"g\"}"),
        "{metrics}"
    );

    // Unhedged traffic to the same upstream group, running alongside, must not leak its
    // slow tail into the hedged route's p95 delay.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background: Vec<_> = (0..4)
        .map(|_| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    http::get(s.proxy, "/n/y").expect("GET");
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let alongside = p99(drive(&s, "/h/z", 2000));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    background
        .into_iter()
        .for_each(|t| t.join().expect("background client"));
    eprintln!("p99 hedged alongside unhedged traffic: {alongside:?}");
    assert!(
        alongside < Duration::from_millis(50),
        "hedged p99 with unhedged traffic alongside: {alongside:?}"
    );
}

#[test]
fn a_post_without_idempotency_key_is_never_hedged() {
    let (fast, slow) = (TestUpstream::start(), TestUpstream::start());
    fast.configure(r#"{"base_delay_ms":200}"#);
    slow.configure(r#"{"base_delay_ms":200}"#);
    let s = Sluice::start(&config(&fast, &slow));
    for _ in 0..4 {
        let r = http::send_json(s.proxy, "POST", "/h/pay", "{}").expect("POST");
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let total = fast.stats().0 + slow.stats().0;
    assert_eq!(
        total, 4,
        "each slow POST reached the upstreams exactly once"
    );

    // With an Idempotency-Key the same slow request may be hedged.
    let r = http::request(
        s.proxy,
        "POST",
        "/h/pay",
        &[
            ("Idempotency-Key", "k1"),
            ("Content-Type", "application/json"),
        ],
        Some("{}"),
    )
    .expect("POST");
    assert_eq!(r.status, 200);
    assert_eq!(
        fast.stats().0 + slow.stats().0,
        6,
        "the keyed POST was hedged (sent twice)"
    );
}
