//! The workspace's own services as child processes: `sluice` and the `todo` service.

use crate::http;
use crate::process::Process;
use crate::{bin_path, free_port};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// How long a service gets to answer its health endpoint after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `sluice` with its config file in a temp dir.
pub struct Sluice {
    /// The process (public so tests can signal or kill it).
    pub process: Process,
    /// Proxy listener.
    pub proxy: SocketAddr,
    /// Admin listener.
    pub admin: SocketAddr,
    dir: TempDir,
}

impl Sluice {
    /// Starts sluice with `yaml`, in which `{listen}` and `{admin}` are replaced by free
    /// loopback addresses; waits until the admin `/health` answers.
    pub fn start(yaml: &str) -> Self {
        Self::start_with_env(yaml, &[])
    }

    /// [`Self::start`] with extra environment variables for the process.
    pub fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-")
            .tempdir()
            .expect("tempdir");
        let proxy: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let admin: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let config = dir.path().join("sluice.yaml");
        let text = yaml
            .replace("{listen}", &proxy.to_string())
            .replace("{admin}", &admin.to_string());
        std::fs::write(&config, text).expect("writing the config");
        let mut cmd = Command::new(bin_path("sluice"));
        cmd.arg("--config")
            .arg(&config)
            .arg("--upgrade-sock")
            .arg(dir.path().join("upgrade.sock"))
            .arg("--pid-file")
            .arg(dir.path().join("sluice.pid"))
            // SLUICE_TEST_LOG (a RUST_LOG filter) makes every test's sluice say more.
            .env(
                "RUST_LOG",
                std::env::var("SLUICE_TEST_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .envs(env.iter().copied());
        let process = Process::spawn("sluice", cmd, &dir.path().join("sluice.log"));
        let s = Self {
            process,
            proxy,
            admin,
            dir,
        };
        let up = crate::eventually(START_TIMEOUT, || {
            http::get(s.admin, "/health").is_ok_and(|r| r.status == 200)
                && std::net::TcpStream::connect(s.proxy).is_ok()
        });
        assert!(up, "sluice did not come up:\n{}", s.process.output());
        s
    }

    /// The config file it runs with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("sluice.yaml")
    }
}

/// A running todo service instance.
pub struct Todo {
    /// The process.
    pub process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
    database_url: String,
    dir: TempDir,
}

impl Todo {
    /// Starts an instance on a free port against `database_url`.
    pub fn start(database_url: &str) -> Self {
        Self::start_on(database_url, free_port())
    }

    /// Starts an instance on `port`; waits until `/health` answers 200.
    pub fn start_on(database_url: &str, port: u16) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-todo-")
            .tempdir()
            .expect("tempdir");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let process = spawn_todo(database_url, port, &dir);
        let t = Self {
            process,
            addr,
            database_url: database_url.to_string(),
            dir,
        };
        t.wait_healthy();
        t
    }

    fn wait_healthy(&self) {
        let up = crate::eventually(START_TIMEOUT, || {
            http::get(self.addr, "/health").is_ok_and(|r| r.status == 200)
        });
        assert!(up, "todo did not come up:\n{}", self.process.output());
    }

    /// Kills the instance (SIGKILL, as a crash would).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the killed instance again on the same port.
    pub fn restart(&mut self) {
        self.process = spawn_todo(&self.database_url, self.addr.port(), &self.dir);
        self.wait_healthy();
    }
}

fn spawn_todo(database_url: &str, port: u16, dir: &TempDir) -> Process {
    let mut cmd = Command::new(bin_path("todo"));
    cmd.arg("--port")
        .arg(port.to_string())
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn");
    Process::spawn("todo", cmd, &dir.path().join(format!("todo-{port}.log")))
}

/// A running `testupstream` (the controllable upstream).
pub struct TestUpstream {
    /// The process.
    pub process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl TestUpstream {
    /// Starts one on a free port; waits until it answers.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-testupstream-")
            .tempdir()
            .expect("tempdir");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut cmd = Command::new(bin_path("testupstream"));
        cmd.arg("--port").arg(addr.port().to_string());
        let process = Process::spawn("testupstream", cmd, &dir.path().join("testupstream.log"));
        let t = Self {
            process,
            addr,
            _dir: dir,
        };
        let up = crate::eventually(START_TIMEOUT, || {
            http::get(t.addr, "/health").is_ok_and(|r| r.status == 200)
        });
        assert!(up, "testupstream did not come up:\n{}", t.process.output());
        t
    }

    /// `PUT /admin/config` with `json` (e.g. `{"delay_ms":300,"delay_percent":10}`).
    pub fn configure(&self, json: &str) {
        let r = http::send_json(self.addr, "PUT", "/admin/config", json).expect("configure");
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// (received, answered, client_gone).
    pub fn stats(&self) -> (u64, u64, u64) {
        let body = http::get(self.addr, "/admin/stats").expect("stats").body;
        let field = |name: &str| -> u64 {
            body.split(&format!("\"{name}\":"))
                .nth(1)
                .and_then(|rest| rest.split([',', '}']).next())
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        (field("received"), field("answered"), field("client_gone"))
    }

    /// Zeroes the counters.
    pub fn reset(&self) {
        let r = http::request(self.addr, "POST", "/admin/reset", &[], None).expect("reset");
        assert_eq!(r.status, 204);
    }
}

/// A running analytics service.
pub struct Analytics {
    /// The process.
    pub process: Process,
    /// API address.
    pub addr: SocketAddr,
    database_url: String,
    brokers: String,
    dir: TempDir,
}

impl Analytics {
    /// Starts one against `database_url` and `brokers`; waits until its API answers.
    pub fn start(database_url: &str, brokers: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-analytics-")
            .tempdir()
            .expect("tempdir");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let process = spawn_analytics(database_url, brokers, addr.port(), &dir);
        let a = Self {
            process,
            addr,
            database_url: database_url.into(),
            brokers: brokers.into(),
            dir,
        };
        a.wait_up();
        a
    }

    fn wait_up(&self) {
        let up = crate::eventually(Duration::from_secs(60), || {
            http::get(self.addr, "/health").is_ok_and(|r| r.status == 200)
        });
        assert!(up, "analytics did not come up:\n{}", self.process.output());
    }

    /// Kills it (SIGKILL) and starts a new one on the same port.
    pub fn kill_and_restart(&mut self) {
        self.process.kill();
        self.process = spawn_analytics(
            &self.database_url,
            &self.brokers,
            self.addr.port(),
            &self.dir,
        );
        self.wait_up();
    }
}

fn spawn_analytics(database_url: &str, brokers: &str, port: u16, dir: &TempDir) -> Process {
    let mut cmd = Command::new(bin_path("analytics"));
    cmd.args([
        "--port",
        &port.to_string(),
        "--brokers",
        brokers,
        "--group",
        "e2e",
    ])
    .env("DATABASE_URL", database_url)
    .env("RUST_LOG", "warn");
    Process::spawn(
        "analytics",
        cmd,
        &dir.path().join(format!("analytics-{port}.log")),
    )
}
