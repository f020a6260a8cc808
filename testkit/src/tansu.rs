//! A throwaway Kafka-compatible broker: tansu (crates.io) with SQLite storage in a temp
//! dir, on a free loopback port. Records survive [`Tansu::stop`] + [`Tansu::start_again`].

use crate::free_port;
use crate::process::Process;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// A running broker.
pub struct Tansu {
    process: Option<Process>,
    dir: TempDir,
    port: u16,
}

/// The `tansu` binary (PATH, else cargo's bin dir); `make test` installs it.
pub fn tansu_bin() -> PathBuf {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("tansu");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cargo/bin/tansu")
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-tansu-")
            .tempdir()
            .expect("tempdir");
        let mut t = Self {
            process: None,
            dir,
            port: free_port(),
        };
        t.start_again();
        t
    }

    /// Starts it again on the same port and storage.
    pub fn start_again(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut cmd = Command::new(tansu_bin());
        cmd.current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .env("RUST_LOG", "warn");
        let log = self.dir.path().join("tansu.log");
        self.process = Some(Process::spawn("tansu", cmd, &log));
        let port = self.port;
        let up = crate::eventually(Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "tansu did not come up on {port}: {}",
            self.process
                .as_ref()
                .map(|p| p.output())
                .unwrap_or_default()
        );
    }

    /// Stops the broker (SIGKILL, like a crash).
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// `127.0.0.1:PORT`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
