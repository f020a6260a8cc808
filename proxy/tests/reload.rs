//! Hot reload (SIGHUP and POST /admin/reload) and graceful shutdown, with real processes.

use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::http;
use sluice_testkit::process::signal;
use sluice_testkit::services::Sluice;
use sluice_testkit::{assert_eventually, ADMIN_AUTH, ADMIN_TOKEN_SHA256};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A config with the same listeners as the running one (placeholders kept for
/// `Sluice::start`, filled in by `render`).
fn yaml(peers: &[String], extra_route: bool) -> String {
    let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
    let mut y = format!(
        "server:\n  listen: \"{{listen}}\"\n  admin_listen: \"{{admin}}\"\n  threads: 2\n  grace_period_s: 5\n\
         admin: {{ token_sha256: \"{ADMIN_TOKEN_SHA256}\" }}\n\
         upstreams:\n  g:\n    peers: [{}]\n    health_check: {{ path: /health, interval_ms: 200, timeout_ms: 200, healthy_after: 1, unhealthy_after: 1 }}\n\
         routes:\n  - {{ name: main, path_prefix: /main, upstream: g }}\n",
        peers.join(", ")
    );
    if extra_route {
        y.push_str("  - { name: extra, path_prefix: /extra, upstream: g }\n");
    }
    y
}

fn render(s: &Sluice, yaml: &str) -> String {
    yaml.replace("{listen}", &s.proxy.to_string())
        .replace("{admin}", &s.admin.to_string())
}

fn metric(s: &Sluice, line_prefix: &str) -> u64 {
    let text = http::get(s.admin, "/metrics").expect("metrics").body;
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn twenty_reloads_under_load_fail_no_request_and_apply_each_change() {
    let (a, b) = (FakeUpstream::start("a"), FakeUpstream::start("b"));
    let one = vec![a.addr.to_string()];
    let two = vec![a.addr.to_string(), b.addr.to_string()];
    let s = Arc::new(Sluice::start(&yaml(&one, false)));

    // Steady load: two clients, GETs back to back, every failure recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (s, stop, served, failures) =
                (s.clone(), stop.clone(), served.clone(), failures.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match http::get(s.proxy, "/main/x") {
                        Ok(r) if r.status == 200 => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => failures
                            .lock()
                            .expect("lock")
                            .push(format!("{} {}", r.status, r.body)),
                        Err(e) => failures.lock().expect("lock").push(e.to_string()),
                    }
                }
            })
        })
        .collect();

    for i in 0..20 {
        let grow = i % 2 == 0;
        let peers = if grow { &two } else { &one };
        std::fs::write(s.config_path(), render(&s, &yaml(peers, grow))).expect("write config");
        s.process.signal(signal::HUP);
        let generation = i + 2;
        assert_eventually!(
            Duration::from_secs(5),
            http::get(s.admin, "/health")
                .is_ok_and(|r| r.body.contains(&format!("\"generation\":{generation}"))),
            "reload {i} was not applied:\n{}",
            s.process.output()
        );
        // The route change is served at once.
        let extra = http::get(s.proxy, "/extra/y").expect("GET /extra");
        assert_eq!(
            extra.status,
            if grow { 200 } else { 404 },
            "reload {i}: {}",
            extra.body
        );
        // The peer change too: with b added, both peers answer (the load threads share
        // the round-robin counter, so sample until both are seen); with b removed, only a.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(http::get(s.proxy, "/main/z").expect("GET").body);
            if grow && seen.len() == 2 {
                break;
            }
            if !grow && seen.len() > 1 {
                break;
            }
        }
        let expected: std::collections::HashSet<String> = if grow {
            ["a /main/z".to_string(), "b /main/z".to_string()].into()
        } else {
            ["a /main/z".to_string()].into()
        };
        assert_eq!(seen, expected, "reload {i}");
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let failures = failures.lock().expect("lock");
    assert!(
        failures.is_empty(),
        "requests failed during reloads: {failures:?}"
    );
    assert!(
        served.load(Ordering::Relaxed) > 100,
        "the load was too light to prove anything"
    );
    assert_eq!(metric(&s, "sluice_config_reloads_total{result=\"ok\"}"), 20);
}

#[test]
fn an_invalid_config_keeps_the_old_one_serving_and_says_why() {
    let a = FakeUpstream::start("a");
    let s = Sluice::start(&yaml(&[a.addr.to_string()], false));
    let broken = render(&s, &yaml(&[a.addr.to_string()], false)).replace(
        "  - { name: main, path_prefix: /main, upstream: g }",
        "  - { name: main, path_prefix: /main, upstream: nope }",
    );
    std::fs::write(s.config_path(), broken).expect("write config");

    s.process.signal(signal::HUP);
    assert_eventually!(
        Duration::from_secs(5),
        metric(&s, "sluice_config_reloads_total{result=\"error\"}") == 1,
        "the failed SIGHUP reload must be counted"
    );
    assert_eq!(
        http::get(s.proxy, "/main/x").expect("GET").status,
        200,
        "old config keeps serving"
    );

    let r = http::request(s.admin, "POST", "/admin/reload", &[ADMIN_AUTH], None)
        .expect("POST /admin/reload");
    assert_eq!(r.status, 400, "{}", r.body);
    let file = s.config_path().display().to_string();
    assert!(
        r.body
            .contains(&format!("{file}:12: routes[0].upstream: no upstream named")),
        "{}",
        r.body
    );
    assert_eq!(
        metric(&s, "sluice_config_reloads_total{result=\"error\"}"),
        2
    );
    assert_eq!(http::get(s.proxy, "/main/x").expect("GET").status, 200);

    let config = http::request(s.admin, "GET", "/admin/config", &[ADMIN_AUTH], None)
        .expect("GET /admin/config")
        .body;
    assert!(config.contains("\"generation\":1"), "{config}");
    assert!(config.contains("\"result\":\"error\""), "{config}");

    // A listener change is refused with a message saying so.
    let moved = render(&s, &yaml(&[a.addr.to_string()], false)).replace("threads: 2", "threads: 3");
    std::fs::write(s.config_path(), moved).expect("write config");
    let r = http::request(s.admin, "POST", "/admin/reload", &[ADMIN_AUTH], None)
        .expect("POST /admin/reload");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body
            .contains("server.threads cannot change without a restart"),
        "{}",
        r.body
    );

    // And a good file applies.
    std::fs::write(
        s.config_path(),
        render(&s, &yaml(&[a.addr.to_string()], true)),
    )
    .expect("write");
    let r = http::request(s.admin, "POST", "/admin/reload", &[ADMIN_AUTH], None)
        .expect("POST /admin/reload");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(http::get(s.proxy, "/extra/1").expect("GET").status, 200);
}

#[test]
fn sigterm_lets_a_slow_request_finish_then_exits_zero() {
    let a = FakeUpstream::start("a");
    let mut s = Sluice::start(&yaml(&[a.addr.to_string()], false));
    let proxy = s.proxy;
    let slow = std::thread::spawn(move || http::get(proxy, "/main/slow"));
    std::thread::sleep(Duration::from_millis(300));
    s.process.signal(signal::TERM);
    let response = slow
        .join()
        .expect("client thread")
        .expect("the slow request must complete");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "a /main/slow");
    let status = s
        .process
        .wait_exit(Duration::from_secs(10))
        .expect("sluice must exit");
    assert!(
        status.success(),
        "exit status {status:?}:\n{}",
        s.process.output()
    );
}

#[test]
fn a_sighup_the_moment_sluice_is_up_reloads_and_never_kills_it() {
    // SIGHUP's default action ends a process; sluice must have claimed it before its
    // listeners open, not whenever the reload service's thread gets to run.
    let up = FakeUpstream::start("a");
    for _ in 0..10 {
        let s = Sluice::start(&yaml(&[up.addr.to_string()], false));
        s.process.signal("HUP");
        std::thread::sleep(Duration::from_millis(100));
        let r = http::get(s.proxy, "/main/x");
        assert!(
            r.as_ref().is_ok_and(|r| r.status == 200),
            "after an early SIGHUP: {r:?}\n{}",
            s.process.output()
        );
        assert_eventually!(
            Duration::from_secs(5),
            metric(&s, "sluice_config_reloads_total{result=\"ok\"}") == 1,
            "the early SIGHUP was not lost: it reloaded once"
        );
    }
}
