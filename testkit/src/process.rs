//! Child processes that are stopped (SIGKILL) when dropped, with their output in a file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Signal names for [`Process::signal`].
pub mod signal {
    /// Graceful shutdown.
    pub const TERM: &str = "TERM";
    /// Config reload.
    pub const HUP: &str = "HUP";
    /// Fast shutdown.
    pub const INT: &str = "INT";
    /// Graceful upgrade (Pingora).
    pub const QUIT: &str = "QUIT";
}

/// A running child process.
pub struct Process {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd`, sending stdout and stderr to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Self {
        let out = File::create(log).expect("creating the log file");
        let err = out.try_clone().expect("cloning the log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            child,
            name: name.to_string(),
            log: log.to_path_buf(),
        }
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (one of the constants in [`signal`]) to the process.
    pub fn signal(&self, signal: &str) {
        // The `kill` command keeps the workspace free of `unsafe` libc calls.
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(
            status.success(),
            "kill -{signal} {} ({}) failed",
            self.pid(),
            self.name
        );
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The output so far (for assertion messages).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Lines of a process's log shown when a test fails while it runs.
const LOG_TAIL_ON_FAILURE: usize = 80;

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        // A failing test's processes say what they saw: the log lives in a temporary
        // folder that is about to be removed.
        if std::thread::panicking() {
            let output = self.output();
            let lines: Vec<&str> = output.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_ON_FAILURE)..];
            eprintln!(
                "--- last {} lines of {} (pid {}) ---\n{}\n--- end of {} ---",
                tail.len(),
                self.name,
                self.child.id(),
                tail.join("\n"),
                self.name
            );
        }
    }
}
