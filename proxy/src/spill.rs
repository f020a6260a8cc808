//! A bounded file under `kafka.spill_dir` that takes request events when the in-memory
//! queue is full (the broker has been away for a while), so they wait on disk instead of
//! being dropped.
//!
//! Order is kept: once an event is spilled, every later event is spilled too until the
//! producer has read the whole file back (the in-memory queue, older, drains first); then
//! the file is emptied and events go to the queue again. A file left by a previous run is
//! read back first. Only when the file reaches its size limit are events dropped.

use sluice_event::RequestEvent;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The spill file's name inside `spill_dir`.
const FILE_NAME: &str = "events.ndjson";

#[derive(Debug)]
struct State {
    file: File,
    /// Bytes written (complete lines only).
    written: u64,
    /// Bytes the producer has read back.
    read: u64,
}

/// The spill file.
#[derive(Debug)]
pub struct Spill {
    path: PathBuf,
    max_bytes: u64,
    /// Spilling: every event goes to the file (kept outside the lock for a cheap check).
    active: AtomicBool,
    state: Mutex<State>,
}

/// Why an event could not be spilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpillRefused {
    /// The file reached its size limit.
    Full,
    /// Writing failed (logged).
    Io,
}

impl Spill {
    /// Opens (creating) `dir/events.ndjson`; events a previous run left there count as
    /// spilled and are read back first.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Absolute: a daemonized sluice changes its working directory after this.
        let path = std::fs::canonicalize(dir)?.join(FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path,
            max_bytes,
            active: AtomicBool::new(written > 0),
            state: Mutex::new(State {
                file,
                written,
                read: 0,
            }),
        })
    }

    /// Whether events are being spilled (so new ones must be spilled too, to keep order).
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Appends one event and keeps spilling on.
    pub fn append(&self, event: &RequestEvent) -> Result<(), SpillRefused> {
        let mut line = event.encode();
        line.push(b'\n');
        let Ok(mut state) = self.state.lock() else {
            return Err(SpillRefused::Io);
        };
        if state.written + line.len() as u64 > self.max_bytes {
            // Still active: later events must not overtake the spilled ones.
            self.active.store(true, Ordering::Release);
            return Err(SpillRefused::Full);
        }
        if let Err(e) = state.file.write_all(&line) {
            tracing::error!(error = %e, path = %self.path.display(), "writing the kafka spill file failed");
            return Err(SpillRefused::Io);
        }
        state.written += line.len() as u64;
        self.active.store(true, Ordering::Release);
        Ok(())
    }

    /// Reads up to `max` spilled events not read yet (unreadable lines are skipped and
    /// counted in the second value).
    pub fn read(&self, max: usize) -> (Vec<RequestEvent>, usize) {
        let (from, to) = match self.state.lock() {
            Ok(s) => (s.read, s.written),
            Err(_) => return (Vec::new(), 0),
        };
        if from >= to {
            return (Vec::new(), 0);
        }
        // Only complete lines below `to` exist (appends happen under the lock), so reading
        // without the lock is safe and keeps the request path unblocked.
        let mut events = Vec::new();
        let mut bad = 0;
        let mut consumed = 0u64;
        let read = File::open(&self.path).and_then(|mut f| {
            f.seek(SeekFrom::Start(from))?;
            let mut reader = BufReader::new(f).take(to - from);
            let mut line = Vec::new();
            while events.len() < max {
                line.clear();
                let n = reader.read_until(b'\n', &mut line)?;
                if n == 0 {
                    break;
                }
                consumed += n as u64;
                match RequestEvent::decode(line.strip_suffix(b"\n").unwrap_or(&line)) {
                    Ok(event) => events.push(event),
                    Err(_) => bad += 1,
                }
            }
            Ok(())
        });
        if let Err(e) = read {
            tracing::error!(error = %e, path = %self.path.display(), "reading the kafka spill file failed");
        }
        if let Ok(mut s) = self.state.lock() {
            s.read = from + consumed;
        }
        (events, bad)
    }

    /// When everything spilled has been read back: empties the file and stops spilling
    /// (returns true). Appends take the same lock, so none can slip in between.
    pub fn finish_if_drained(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.read < state.written {
            return false;
        }
        if let Err(e) = state.file.set_len(0) {
            tracing::error!(error = %e, path = %self.path.display(), "emptying the kafka spill file failed");
            return false;
        }
        state.written = 0;
        state.read = 0;
        self.active.store(false, Ordering::Release);
        true
    }

    /// Bytes waiting in the file.
    pub fn pending_bytes(&self) -> u64 {
        self.state.lock().map(|s| s.written - s.read).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u64) -> RequestEvent {
        let line = format!(
            r#"{{"v":1,"id":"t-{i}","ts":0,"route":"r","method":"GET","path":"/","status":200,"latency_us":{i}}}"#
        );
        RequestEvent::decode(line.as_bytes()).expect("event")
    }

    #[test]
    fn spills_in_order_refuses_past_the_limit_and_empties_when_drained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = event(0).encode().len() as u64 + 1;
        let spill = Spill::open(dir.path(), one * 5).expect("open");
        assert!(!spill.is_active());
        for i in 0..5 {
            assert_eq!(spill.append(&event(i)), Ok(()));
        }
        assert!(spill.is_active());
        assert_eq!(spill.append(&event(5)), Err(SpillRefused::Full));
        let (first, bad) = spill.read(3);
        assert_eq!((first.len(), bad), (3, 0));
        assert!(!spill.finish_if_drained(), "two still unread");
        let (rest, _) = spill.read(10);
        let ids: Vec<String> = first.iter().chain(&rest).map(|e| e.id.clone()).collect();
        assert_eq!(ids, ["t-0", "t-1", "t-2", "t-3", "t-4"]);
        assert!(spill.finish_if_drained());
        assert!(!spill.is_active());
        assert_eq!(spill.pending_bytes(), 0);
    }

    #[test]
    fn a_file_left_by_a_previous_run_is_read_back_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let spill = Spill::open(dir.path(), 1 << 20).expect("open");
            spill.append(&event(7)).expect("append");
        }
        let spill = Spill::open(dir.path(), 1 << 20).expect("reopen");
        assert!(spill.is_active());
        let (events, _) = spill.read(10);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, "t-7");
    }
}
