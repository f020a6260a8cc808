//! A throwaway `redis-server` on a free loopback port, no persistence, killed on drop.

use crate::free_port;
use crate::process::Process;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// A running Redis.
pub struct Redis {
    process: Option<Process>,
    dir: TempDir,
    port: u16,
    durable: bool,
}

impl Redis {
    /// Starts a server and waits until it answers PING.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Like [`Redis::start`], with an append-only file (fsync always) in its temp dir, so
    /// data survives [`Redis::stop`] + [`Redis::start_again`] (for outage tests).
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-redis-")
            .tempdir()
            .expect("tempdir");
        let mut redis = Self {
            process: None,
            dir,
            port: free_port(),
            durable,
        };
        redis.start_again();
        redis
    }

    /// Starts it again (same port) after [`Redis::stop`].
    pub fn start_again(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            if self.durable { "yes" } else { "no" },
            "--appendfsync",
            "always",
        ])
        .arg("--dir")
        .arg(self.dir.path());
        let log = self.dir.path().join("redis.log");
        self.process = Some(Process::spawn("redis-server", cmd, &log));
        let port = self.port;
        assert!(
            crate::eventually(Duration::from_secs(10), || ping(port)),
            "redis-server did not answer PING on {port}"
        );
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `redis-cli -p PORT ARGS..` and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}
