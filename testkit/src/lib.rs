//! Test harness: throwaway servers on free loopback ports, child processes that are
//! stopped on drop, a small blocking HTTP client and fake upstreams.
//!
//! Everything here is for tests; failures panic with a message saying what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fake;
pub mod http;
pub mod payments;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod redis_cluster;
pub mod services;
pub mod slow_tcp;
pub mod tansu;
pub mod tls;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The admin token test configs use (`admin: { token_sha256: ADMIN_TOKEN_SHA256 }`).
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// SHA-256 of [`ADMIN_TOKEN`], hex.
pub const ADMIN_TOKEN_SHA256: &str =
    "17d6bfe05d1b1fb7bc499f8e3f639c7b3eda4c40f321eef8887a0c04c89a99c5";
/// The `Authorization` header carrying [`ADMIN_TOKEN`].
pub const ADMIN_AUTH: (&str, &str) = ("Authorization", "Bearer test-admin-token");

/// A port that was free a moment ago on 127.0.0.1, and that no other caller in this
/// process was given. The kernel may hand a just-released port out again, and the tests
/// of one binary run in parallel: two servers given the same port would each find the
/// other (seen: a WebSocket test's socket reset because it had reached another test's
/// sluice, which that test then stopped).
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding an ephemeral port");
        if claim_ports(&[port]) {
            return port;
        }
    }
}

/// Records `ports` as given to a caller in this process, all or none: false when one of
/// them was given before. Every helper that hands out ports goes through it, so no two
/// servers of parallel tests are told to listen on the same one.
pub(crate) fn claim_ports(ports: &[u16]) -> bool {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    if ports.iter().any(|p| given.contains(p)) {
        return false;
    }
    given.extend_from_slice(ports);
    true
}

/// Path of a binary built by this workspace (`sluice`, `todo`, ...), found next to the
/// running test executable's target directory.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    for dir in exe.ancestors().skip(1) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "binary {name} not found near {}; run `cargo build --workspace --bins` first",
        exe.display()
    );
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `assert!` that `$check` becomes true within `$timeout`.
#[macro_export]
macro_rules! assert_eventually {
    ($timeout:expr, $check:expr, $($msg:tt)+) => {
        assert!($crate::eventually($timeout, || $check), $($msg)+)
    };
}

/// The workspace root (for `conf/` and other checked-in files).
pub fn workspace_root() -> PathBuf {
    // Read at run time: one target dir serves several checkouts (CI's clean clone reuses
    // it), and a path fixed at compile time would name whichever checkout built it last.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("tests run inside the workspace")
        .to_path_buf()
}
