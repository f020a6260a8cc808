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
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser suite ran past {SUITE_TIMEOUT:?}; killed it");
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
