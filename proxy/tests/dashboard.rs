//! The dashboard in a real browser: `dashboard/tests/dashboard.test.mjs` (Playwright
//! driving Debian's Chromium) against a sluice with Redis, a Kafka-compatible broker,
//! the analytics service and PostgreSQL, all throwaway instances on loopback.
//! `make test` installs Chromium and the npm packages (`scripts/install-deps.sh`,
//! `scripts/ui-vendor.sh`); screenshots land in `dashboard/test-output/`.

use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::postgres::Postgres;
use sluice_testkit::redis::Redis;
use sluice_testkit::services::{Analytics, Sluice};
use sluice_testkit::tansu::Tansu;
use sluice_testkit::{workspace_root, ADMIN_TOKEN, ADMIN_TOKEN_SHA256};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest the browser suite may take; it stops by itself well before.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

fn config(redis: &str, brokers: &str, analytics: &Analytics, up: &FakeUpstream) -> String {
    format!(
        r#"server: {{ listen: "{{listen}}", admin_listen: "{{admin}}", threads: 2, grace_period_s: 1 }}
admin: {{ token_sha256: "{ADMIN_TOKEN_SHA256}", analytics_url: "http://{analytics}" }}
redis: {{ url: "{redis}", timeout_ms: 250 }}
kafka: {{ brokers: "{brokers}", topic: sluice.requests, queue_capacity: 10000, linger_ms: 5 }}
tiers:
  roomy: {{ rate_per_s: 1000, burst: 1000 }}
upstreams:
  backend: {{ peers: ["{up}"] }}
routes:
  - {{ name: keyed, path_prefix: /api/, strip_prefix: true, upstream: backend, auth: api_key }}
"#,
        analytics = analytics.addr,
        up = up.addr,
    )
}

#[test]
fn the_dashboard_in_chromium() {
    let root = workspace_root();
    let playwright = root.join("dashboard/node_modules/playwright-core");
    assert!(
        playwright.is_dir(),
        "playwright-core is missing: run scripts/ui-vendor.sh (make test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/install-deps.sh (make test does)"
    );
    let (pg, redis, up) = (Postgres::start(), Redis::start(), FakeUpstream::start("up"));
    let broker = Tansu::start();
    let analytics = Analytics::start(&pg.url(), &broker.brokers());
    let s = Sluice::start(&config(&redis.url(), &broker.brokers(), &analytics, &up));

    let out = root.join("dashboard/test-output");
    let mut node = Command::new("node");
    node.arg("--test").arg("--test-reporter=spec");
    // `DASHBOARD_TESTS=regex` runs only the browser tests whose names match.
    if let Ok(pattern) = std::env::var("DASHBOARD_TESTS") {
        node.arg(format!("--test-name-pattern={pattern}"));
    }
    let mut child = node
        .arg("tests/dashboard.test.mjs")
        .current_dir(root.join("dashboard"))
        .env("SLUICE_ADMIN", format!("http://{}", s.admin))
        .env("SLUICE_PROXY", format!("http://{}", s.proxy))
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("OUT_DIR", &out)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs (npm and node come with the machine)");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break status;
        }
        if started.elapsed() > SUITE_TIMEOUT {
            // Playwright starts Chromium in a process group of its own: stop the browser
            // processes by PID first, while they are still node's descendants.
            for pid in descendants(child.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser suite ran past {SUITE_TIMEOUT:?}; stopped it and its browser");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "the browser suite failed ({status}); screenshots in {}\nsluice's log:\n{}",
        out.display(),
        s.process.output()
    );
}

/// Every process below `pid` (children, their children, ...), from `ps`.
fn descendants(pid: u32) -> Vec<u32> {
    let table = Command::new("ps")
        .args(["-eo", "pid=,ppid="])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let pairs: Vec<(u32, u32)> = table
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace().map(str::parse::<u32>);
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while let Some(&parent) = found.get(i) {
        found.extend(
            pairs
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}
