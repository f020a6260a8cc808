use super::sample::{PeerCounts, RouteCounts, Sample};
use super::*;

fn route(by_class: [u64; 5], buckets: &[(f64, u64)]) -> RouteCounts {
    RouteCounts {
        by_class,
        buckets: buckets.to_vec(),
        timed: by_class.iter().sum(),
    }
}

fn sample(at_ms: u64, r: RouteCounts, limited: u64, peer: (u64, u64)) -> Sample {
    let mut s = Sample {
        at_ms,
        ..Sample::default()
    };
    s.routes.insert("api".into(), r);
    s.limited.insert("free".into(), limited);
    s.peers.insert(
        ("g".into(), "127.0.0.1:1".into()),
        PeerCounts {
            attempts: peer.0,
            failures: peer.1,
        },
    );
    s
}

#[test]
fn points_are_rates_between_readings_and_totals_span_the_window() {
    let h = TrafficHistory::default();
    h.push(sample(
        0,
        route([0, 0, 0, 0, 0], &[(0.001, 0), (0.01, 0)]),
        0,
        (0, 0),
    ));
    // 2 s later: 20 × 2xx, all under 1 ms; 4 × 429s.
    h.push(sample(
        2000,
        route([0, 16, 0, 4, 0], &[(0.001, 20), (0.01, 20)]),
        4,
        (16, 0),
    ));
    // 2 s later: 10 more 2xx between 1 and 10 ms, 10 × 5xx failing at the peer.
    h.push(sample(
        4000,
        route([0, 26, 0, 4, 10], &[(0.001, 20), (0.01, 40)]),
        4,
        (36, 10),
    ));
    let v = h.series(Duration::from_secs(60));
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["t"], 2);
    assert_eq!(points[0]["routes"]["api"]["rps"], 10.0);
    assert_eq!(points[0]["routes"]["api"]["status"]["4xx"], 2.0);
    assert_eq!(points[0]["limited_by_tier"]["free"], 2.0);
    assert_eq!(points[0]["all"]["rps"], 10.0);
    assert_eq!(points[1]["limited_by_tier"]["free"], 0.0);
    // Second interval: 20 observations, all in (1 ms, 10 ms]: p50 interpolates to 5.5 ms.
    let p50 = points[1]["routes"]["api"]["p50_ms"].as_f64().expect("p50");
    assert!((p50 - 5.5).abs() < 1e-9, "{p50}");
    assert_eq!(v["totals"]["routes"]["api"]["requests"], 40);
    assert_eq!(v["totals"]["routes"]["api"]["status"]["5xx"], 10);
    assert_eq!(v["totals"]["limited_by_tier"]["free"], 4);

    // Only the newest reading falls in a 1 s window: no points, no totals.
    let v = h.series(Duration::from_secs(1));
    assert_eq!(v["points"].as_array().map(Vec::len), Some(0));

    let recent = h.peers_recent(Duration::from_secs(2));
    let peer = recent[&("g".to_string(), "127.0.0.1:1".to_string())];
    assert_eq!((peer.attempts, peer.failures), (20, 10));
}

#[test]
fn quantiles_follow_histogram_quantile() {
    let d = route([0, 100, 0, 0, 0], &[(0.001, 50), (0.002, 90), (0.005, 100)]);
    assert_eq!(quantile_ms(&d, 0.5), Some(1.0));
    let p99 = quantile_ms(&d, 0.99).expect("p99");
    assert!((p99 - 4.7).abs() < 1e-9, "{p99}");
    assert_eq!(quantile_ms(&RouteCounts::default(), 0.5), None);
    // Observations past the last finite bucket: its bound.
    let beyond = route([0, 10, 0, 0, 0], &[(0.001, 0), (0.002, 0)]);
    assert_eq!(quantile_ms(&beyond, 0.99), Some(2.0));
}

#[test]
fn readings_come_from_the_live_counters() {
    let m = metrics();
    m.requests
        .with_label_values(&["traffic-test", "204"])
        .inc_by(3);
    m.request_duration
        .with_label_values(&["traffic-test"])
        .observe(0.0003);
    m.ratelimit_decisions
        .with_label_values(&["traffic-tier", "limited", "redis"])
        .inc();
    let s = Sample::take(m, 1);
    let r = &s.routes["traffic-test"];
    assert_eq!(r.by_class[1], 3);
    assert_eq!(r.timed, 1);
    assert_eq!(r.buckets.first().map(|b| b.1), Some(1));
    assert_eq!(s.limited["traffic-tier"], 1);
}
