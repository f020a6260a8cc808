//! A throwaway PostgreSQL cluster: `initdb` + `pg_ctl` in a temp dir on a free port,
//! trust auth on loopback, durability off (tests only). Run as the `postgres` user when
//! we are root, because initdb refuses root.

use crate::free_port;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// A running cluster; stopped and deleted on drop.
pub struct Postgres {
    dir: TempDir,
    port: u16,
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Path of a PostgreSQL server binary (`initdb`, `pg_ctl`).
pub fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin").join(name))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(program: &Path, args: &[&str]) {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = cmd.args(args).output().expect("running a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    /// Creates and starts a cluster.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-pg-")
            .tempdir()
            .expect("tempdir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success(), "chown of the PostgreSQL temp dir failed");
        }
        let data = dir.path().join("data");
        let data_s = data.to_string_lossy().to_string();
        run(
            &pg_bin("initdb"),
            &[
                "-D",
                &data_s,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let pg = Self {
            dir,
            port: free_port(),
        };
        pg.start_again();
        pg
    }

    /// Starts the (stopped) cluster again on the same port.
    pub fn start_again(&self) {
        let data = self.dir.path().join("data").to_string_lossy().to_string();
        let log = self
            .dir
            .path()
            .join("postgres.log")
            .to_string_lossy()
            .to_string();
        let sock = self.dir.path().to_string_lossy().to_string();
        let options = format!(
            "-p {} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            self.port
        );
        run(
            &pg_bin("pg_ctl"),
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        );
    }

    /// Stops the cluster (fast mode: connections are cut).
    pub fn stop(&self) {
        let data = self.dir.path().join("data").to_string_lossy().to_string();
        run(
            &pg_bin("pg_ctl"),
            &["-D", &data, "-m", "fast", "-w", "stop"],
        );
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `postgres` as user `postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").to_string_lossy().to_string();
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_bin("pg_ctl"));
            c
        } else {
            Command::new(pg_bin("pg_ctl"))
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}
