//! The payments family as child processes: the processor simulator and the payments
//! service.

use crate::http;
use crate::process::Process;
use crate::{bin_path, free_port};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// The simulators' admin token.
pub const RINHA_TOKEN: (&str, &str) = ("X-Rinha-Token", "123");

fn json(r: &http::Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

/// A running payment-processor simulator.
pub struct ProcessorSim {
    /// The process.
    pub process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl ProcessorSim {
    /// Starts one with `fee` on a free port; waits until it answers.
    pub fn start(fee: f64) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-processor-")
            .tempdir()
            .expect("tempdir");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut cmd = Command::new(bin_path("processor"));
        cmd.args([
            "--port",
            &addr.port().to_string(),
            "--fee",
            &fee.to_string(),
        ])
        .env("RUST_LOG", "warn");
        let process = Process::spawn("processor", cmd, &dir.path().join("processor.log"));
        let p = Self {
            process,
            addr,
            _dir: dir,
        };
        let up = crate::eventually(Duration::from_secs(30), || {
            std::net::TcpStream::connect(p.addr).is_ok()
        });
        assert!(up, "processor did not come up:\n{}", p.process.output());
        p
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn admin_put(&self, path: &str, body: &str) {
        let r = http::request(
            self.addr,
            "PUT",
            path,
            &[RINHA_TOKEN, ("Content-Type", "application/json")],
            Some(body),
        )
        .expect("processor admin call");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }

    /// Every payment takes `ms` from now on.
    pub fn set_delay(&self, ms: u64) {
        self.admin_put(
            "/admin/configurations/delay",
            &format!("{{\"delay\":{ms}}}"),
        );
    }

    /// Payments fail (500) from now on, or stop failing.
    pub fn set_failure(&self, failing: bool) {
        self.admin_put(
            "/admin/configurations/failure",
            &format!("{{\"failure\":{failing}}}"),
        );
    }

    /// `(totalRequests, totalAmount)` from `GET /admin/payments-summary{query}`.
    pub fn summary(&self, query: &str) -> (u64, f64) {
        let r = http::request(
            self.addr,
            "GET",
            &format!("/admin/payments-summary{query}"),
            &[RINHA_TOKEN],
            None,
        )
        .expect("processor summary");
        assert_eq!(r.status, 200, "{}", r.body);
        let v = json(&r);
        (
            v["totalRequests"].as_u64().unwrap_or(u64::MAX),
            v["totalAmount"].as_f64().unwrap_or(f64::NAN),
        )
    }

    /// `(calls answered, calls queued, calls refused)` of `service-health`.
    pub fn health_stats(&self) -> (u64, u64, u64) {
        let r = http::request(
            self.addr,
            "GET",
            "/admin/health-stats",
            &[RINHA_TOKEN],
            None,
        )
        .expect("health stats");
        let v = json(&r);
        let n = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
        (n("calls"), n("queued"), n("rejected"))
    }
}

/// A running payments service instance.
pub struct PaymentsService {
    /// The process.
    pub process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
    args: Vec<String>,
    dir: TempDir,
}

impl PaymentsService {
    /// Starts an instance against the given stores and processors, with `extra` CLI
    /// arguments; waits until `/health` answers 200.
    pub fn start(
        database_url: &str,
        redis_url: &str,
        default: &ProcessorSim,
        fallback: &ProcessorSim,
        extra: &[&str],
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-payments-")
            .tempdir()
            .expect("tempdir");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut args: Vec<String> = vec![
            "--port".into(),
            addr.port().to_string(),
            "--database-url".into(),
            database_url.into(),
            "--redis-url".into(),
            redis_url.into(),
            "--default-url".into(),
            default.url(),
            "--fallback-url".into(),
            fallback.url(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let process = spawn_payments(&args, &dir);
        let s = Self {
            process,
            addr,
            args,
            dir,
        };
        s.wait_healthy();
        s
    }

    fn wait_healthy(&self) {
        let up = crate::eventually(Duration::from_secs(30), || {
            http::get(self.addr, "/health").is_ok_and(|r| r.status == 200)
        });
        assert!(up, "payments did not come up:\n{}", self.process.output());
    }

    /// Kills it (SIGKILL, as a crash would) and starts it again with the same arguments.
    pub fn kill_and_restart(&mut self) {
        self.process.kill();
        self.process = spawn_payments(&self.args, &self.dir);
        self.wait_healthy();
    }

    /// `(accepted, queued, processing)` from `GET /queue-stats`.
    pub fn queue_stats(&self) -> (u64, u64, u64) {
        let r = http::get(self.addr, "/queue-stats").expect("queue stats");
        let v = json(&r);
        let n = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
        (n("accepted"), n("queued"), n("processing"))
    }
}

fn spawn_payments(args: &[String], dir: &TempDir) -> Process {
    let mut cmd = Command::new(bin_path("payments"));
    cmd.args(args).env("RUST_LOG", "info");
    Process::spawn("payments", cmd, &dir.path().join("payments.log"))
}

/// `{"default": (totalRequests, totalAmount), "fallback": (...)}` of a payments summary body.
pub fn parse_summary(body: &str) -> [(u64, f64); 2] {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let side = |name: &str| {
        (
            v[name]["totalRequests"].as_u64().unwrap_or(u64::MAX),
            v[name]["totalAmount"].as_f64().unwrap_or(f64::NAN),
        )
    };
    [side("default"), side("fallback")]
}
