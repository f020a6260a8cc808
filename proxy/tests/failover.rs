//! The foundation's bar with real processes: PostgreSQL, two todo instances, sluice.
//! Kill one instance: within 3 s all traffic goes to the other and no GET during the
//! switch gets a 5xx; start it again: traffic returns to both within 3 s.

use sluice_testkit::http;
use sluice_testkit::postgres::Postgres;
use sluice_testkit::services::{Sluice, Todo};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The health-check settings of `conf/sluice.yaml`, so the test proves the stack's timing.
fn stack_like_config(a: SocketAddr, b: SocketAddr) -> String {
    format!(
        r#"server:
  listen: "{{listen}}"
  admin_listen: "{{admin}}"
  threads: 2
  grace_period_s: 1
upstreams:
  todo:
    peers: ["{a}", "{b}"]
    health_check: {{ path: /health, interval_ms: 1000, timeout_ms: 300, healthy_after: 2, unhealthy_after: 2 }}
    retries: 2
    connect_timeout_ms: 500
routes:
  - {{ name: todo, path_prefix: /todo, upstream: todo }}
"#
    )
}

/// One GET /todos: when it finished, its status and which peer answered.
struct Sample {
    at: Instant,
    status: u16,
    peer: String,
}

fn sample(s: &Sluice) -> Sample {
    match http::get(s.proxy, "/todos?limit=1") {
        Ok(r) => Sample {
            at: Instant::now(),
            status: r.status,
            peer: r
                .header("x-sluice-upstream")
                .unwrap_or_default()
                .to_string(),
        },
        Err(e) => panic!("connection-level failure through sluice: {e}"),
    }
}

/// GETs back to back for `duration`.
fn drive(s: &Sluice, duration: Duration) -> Vec<Sample> {
    let end = Instant::now() + duration;
    let mut samples = Vec::new();
    while Instant::now() < end {
        samples.push(sample(s));
        std::thread::sleep(Duration::from_millis(5));
    }
    samples
}

#[test]
fn killing_a_todo_instance_moves_traffic_without_5xx_and_restarting_brings_it_back() {
    let pg = Postgres::start();
    let mut a = Todo::start(&pg.url());
    let b = Todo::start(&pg.url());
    let s = Sluice::start(&stack_like_config(a.addr, b.addr));

    // The walkthrough: create, list, and see both peers answer in turn.
    let created = http::send_json(
        s.proxy,
        "POST",
        "/todo",
        r#"{"title":"Finish the report","status":"pending","due_date":"2024-10-30"}"#,
    )
    .expect("POST /todo");
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.body.contains(r#""id":"#), "{}", created.body);
    let listed = http::get(s.proxy, "/todos").expect("GET /todos");
    assert!(listed.body.contains("Finish the report"), "{}", listed.body);
    let peers: Vec<String> = (0..4).map(|_| sample(&s).peer).collect();
    assert!(
        peers.windows(2).all(|w| w[0] != w[1]),
        "GETs must alternate: {peers:?}"
    );

    // Kill A mid-stream.
    let before = drive(&s, Duration::from_millis(500));
    let killed_at = Instant::now();
    a.kill();
    let during = drive(&s, Duration::from_secs(5));
    let bad: Vec<u16> = during
        .iter()
        .map(|x| x.status)
        .filter(|st| *st >= 500)
        .collect();
    assert!(bad.is_empty(), "GETs during the switch got 5xx: {bad:?}");
    let a_label = a.addr.to_string();
    let late_to_a = during
        .iter()
        .filter(|x| x.at > killed_at + Duration::from_secs(3) && x.peer == a_label)
        .count();
    assert_eq!(
        late_to_a, 0,
        "traffic still reached the killed peer 3 s after the kill"
    );
    assert!(before.iter().all(|x| x.status == 200));

    // Bring A back; within 3 s of it answering, both peers serve again.
    a.restart();
    let restarted_at = Instant::now();
    let after = drive(&s, Duration::from_secs(4));
    assert!(
        after.iter().all(|x| x.status == 200),
        "GETs after the restart must succeed"
    );
    let first_to_a = after.iter().find(|x| x.peer == a_label).map(|x| x.at);
    let back_after = first_to_a.map(|t| t.duration_since(restarted_at));
    assert!(
        back_after.is_some_and(|d| d <= Duration::from_secs(3)),
        "the restarted peer got no traffic within 3 s (first at {back_after:?})"
    );
    let tail: HashSet<&str> = after
        .iter()
        .filter(|x| x.at > restarted_at + Duration::from_secs(3))
        .map(|x| x.peer.as_str())
        .collect();
    assert_eq!(tail.len(), 2, "both peers must serve again: {tail:?}");
}
