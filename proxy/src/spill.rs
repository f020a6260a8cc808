//! A bounded file under `kafka.spill_dir` that takes request events when the in-memory
//! queue is full (the broker has been away for a while), so they wait on disk instead of
//! being dropped.
//!
//! Order is kept: once an event is spilled, every later event is spilled too until the
//! producer has read the whole file back (the in-memory queue, older, drains first); then
//! the file is emptied and events go to the queue again. Only when the file reaches its
//! size limit are events dropped.
//!
//! Delivery is at least once, never lost: the producer [`Spill::read`]s a batch, hands it
//! to Kafka, and only once the broker has confirmed it does it [`Spill::commit`], which
//! saves the read position next to the file (`events.ndjson.offset`, written then
//! renamed). The file is
//! emptied only when everything in it was confirmed, and a restart resumes from the saved
//! position, so confirmed events are not sent again. The file is locked while a process
//! uses it: a second process on the same folder (a graceful upgrade overlaps two) spills
//! to a file of its own, `events-<pid>.ndjson`, instead of writing into the first's.

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
    /// Bytes the producer has read back (handed to Kafka, maybe not confirmed).
    read: u64,
    /// Bytes the broker has confirmed; saved in the offset file.
    committed: u64,
}

/// The spill file.
#[derive(Debug)]
pub struct Spill {
    path: PathBuf,
    offset_path: PathBuf,
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
    /// Opens (creating) `dir/events.ndjson`, or this process's own file when another
    /// process holds that one; events a previous run left there past its saved position
    /// count as spilled and are read back first.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Absolute: a daemonized sluice changes its working directory after this.
        let dir = std::fs::canonicalize(dir)?;
        let (path, file) = match locked(&dir.join(FILE_NAME))? {
            Some(file) => (dir.join(FILE_NAME), file),
            None => {
                let own = dir.join(format!("events-{}.ndjson", std::process::id()));
                let file = locked(&own)?.ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::WouldBlock, "spill file in use")
                })?;
                tracing::warn!(path = %own.display(), "another process holds the kafka spill file; spilling to a file of this process");
                (own, file)
            }
        };
        let written = file.metadata()?.len();
        let offset_path = path.with_extension("ndjson.offset");
        let committed = std::fs::read_to_string(&offset_path)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .filter(|&c| c <= written)
            .unwrap_or(0);
        Ok(Self {
            path,
            offset_path,
            max_bytes,
            active: AtomicBool::new(written > committed),
            state: Mutex::new(State {
                file,
                written,
                read: committed,
                committed,
            }),
        })
    }

    /// Records that everything read so far was confirmed by the broker, and saves the
    /// position (written to a temporary file, then renamed over the old one).
    pub fn commit(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.committed == state.read {
            return;
        }
        let tmp = self.offset_path.with_extension("offset.tmp");
        let saved = std::fs::write(&tmp, state.read.to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.offset_path));
        match saved {
            Ok(()) => state.committed = state.read,
            Err(e) => {
                tracing::error!(error = %e, path = %self.offset_path.display(), "saving the kafka spill position failed");
            }
        }
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

    /// When everything spilled has been confirmed by the broker: empties the file and
    /// stops spilling (returns true). Appends take the same lock, so none can slip in
    /// between.
    pub fn finish_if_drained(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.committed < state.written {
            return false;
        }
        if let Err(e) = state.file.set_len(0) {
            tracing::error!(error = %e, path = %self.path.display(), "emptying the kafka spill file failed");
            return false;
        }
        // The position goes with the lines it counted; a crash between the two leaves a
        // position past the end, which `open` ignores.
        if let Err(e) = std::fs::remove_file(&self.offset_path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, "removing the kafka spill position failed");
            }
        }
        state.written = 0;
        state.read = 0;
        state.committed = 0;
        self.active.store(false, Ordering::Release);
        true
    }

    /// Bytes waiting in the file (not confirmed yet).
    pub fn pending_bytes(&self) -> u64 {
        self.state
            .lock()
            .map(|s| s.written.saturating_sub(s.committed))
            .unwrap_or(0)
    }
}

/// Opens `path` for appending and takes its exclusive lock; `None` when another process
/// holds it.
fn locked(path: &Path) -> std::io::Result<Option<File>> {
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
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
        assert!(!spill.finish_if_drained(), "read, but not confirmed yet");
        spill.commit();
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

    /// Hardening #4: the position is saved only when the broker confirmed, and a restart
    /// resumes from it: confirmed events are not sent again, unconfirmed ones are.
    #[test]
    fn confirmed_events_are_not_sent_again_after_a_restart_and_unconfirmed_ones_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let spill = Spill::open(dir.path(), 1 << 20).expect("open");
            for i in 0..4 {
                spill.append(&event(i)).expect("append");
            }
            assert_eq!(spill.read(2).0.len(), 2);
            spill.commit(); // t-0, t-1 confirmed
            assert_eq!(spill.read(1).0[0].id, "t-2");
            // The process dies before t-2 is confirmed.
        }
        let spill = Spill::open(dir.path(), 1 << 20).expect("reopen");
        assert!(spill.is_active());
        let ids: Vec<String> = spill.read(10).0.into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["t-2", "t-3"]);
    }

    #[test]
    fn a_second_process_on_the_same_folder_spills_to_its_own_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Spill::open(dir.path(), 1 << 20).expect("open");
        // Locks are per open file description, so a second open in this process stands
        // in for a second process.
        let second = Spill::open(dir.path(), 1 << 20).expect("second");
        assert_ne!(first.path, second.path);
        first.append(&event(1)).expect("append");
        second.append(&event(2)).expect("append");
        assert_eq!(first.read(10).0[0].id, "t-1");
        assert_eq!(second.read(10).0[0].id, "t-2");
    }
}
