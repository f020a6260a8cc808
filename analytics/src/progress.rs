//! Whether the consumer is getting anywhere: a partition whose position has not moved
//! since the last check although the broker already held records past it then is
//! *stalled* (the broker has records there but serves
//! none — seen with tansu 0.6 after a broker freeze, see the README). Reported on
//! `/health` (503) and in the log, so a silent stop of the pipeline is not silent.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// One stalled partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stall {
    /// The partition.
    pub partition: i32,
    /// The next offset the consumer asks for.
    pub position: i64,
    /// The broker's high watermark.
    pub high_watermark: i64,
}

/// The latest verdict, shared between the consumer loop and the API.
#[derive(Debug, Default)]
pub struct Progress {
    stalled: Mutex<Vec<Stall>>,
    /// Position and high watermark per partition at the previous check.
    previous: Mutex<HashMap<i32, (i64, i64)>>,
    /// Checks in a row that found no partition assigned to this member.
    unassigned_checks: std::sync::atomic::AtomicU32,
    /// Since when applying a batch keeps failing (the database is away), if it does.
    failing_since: Mutex<Option<std::time::Instant>>,
}

impl Progress {
    /// Records whether applying the current batch is failing.
    pub fn set_failing(&self, failing: bool) {
        if let Ok(mut since) = self.failing_since.lock() {
            match (failing, since.is_some()) {
                (true, false) => *since = Some(std::time::Instant::now()),
                (false, true) => *since = None,
                _ => {}
            }
        }
    }

    /// How long applying batches has been failing, if it is.
    pub fn failing_for(&self) -> Option<std::time::Duration> {
        self.failing_since.lock().ok()?.map(|t| t.elapsed())
    }

    /// Records one check: `(partition, position, high watermark)` for every partition
    /// the consumer holds. Returns the stalls (logged by the caller when they change).
    pub fn check(&self, partitions: &[(i32, i64, i64)]) -> Vec<Stall> {
        let Ok(mut previous) = self.previous.lock() else {
            return Vec::new();
        };
        let stalls: Vec<Stall> = partitions
            .iter()
            .filter(|(p, position, _)| {
                previous.get(p).is_some_and(|&(before, high_before)| {
                    before == *position && *position < high_before
                })
            })
            .map(|&(partition, position, high_watermark)| Stall {
                partition,
                position,
                high_watermark,
            })
            .collect();
        *previous = partitions
            .iter()
            .map(|&(p, pos, high)| (p, (pos, high)))
            .collect();
        if let Ok(mut stalled) = self.stalled.lock() {
            stalled.clone_from(&stalls);
        }
        stalls
    }

    /// Records how many partitions this member holds; returns how many checks in a row
    /// found none (more members than partitions, or a join the coordinator never
    /// completes).
    pub fn assigned(&self, partitions: usize) -> u32 {
        use std::sync::atomic::Ordering;
        if partitions > 0 {
            self.unassigned_checks.store(0, Ordering::Relaxed);
            0
        } else {
            self.unassigned_checks.fetch_add(1, Ordering::Relaxed) + 1
        }
    }

    /// Checks in a row that found no partition assigned.
    pub fn unassigned_checks(&self) -> u32 {
        self.unassigned_checks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The stalls found by the latest check.
    pub fn stalled(&self) -> Vec<Stall> {
        self.stalled.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Records the broker holds past this member's positions, at the last check.
    pub fn lag(&self) -> i64 {
        self.previous.lock().map_or(0, |p| {
            p.values()
                .map(|(position, high)| high.saturating_sub(*position).max(0))
                .fold(0i64, i64::saturating_add)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_behind_and_not_moving_is_stalled() {
        let p = Progress::default();
        // First sight: nothing to compare with.
        assert!(p.check(&[(0, 100, 500), (1, 50, 50)]).is_empty());
        // Partition 0 moved; partition 1 was caught up, its new records are just in.
        assert!(p.check(&[(0, 200, 500), (1, 50, 60)]).is_empty());
        // Partition 0 did not move although records waited past it; 1 moved.
        let stalls = p.check(&[(0, 200, 700), (1, 60, 60)]);
        assert_eq!(
            stalls,
            vec![Stall {
                partition: 0,
                position: 200,
                high_watermark: 700
            }]
        );
        assert_eq!(p.stalled(), stalls);
        // It moves again: no longer stalled.
        assert!(p.check(&[(0, 300, 700), (1, 60, 60)]).is_empty());
        assert!(p.stalled().is_empty());
        assert_eq!(p.lag(), 400, "700 - 300 on partition 0, none on 1");
    }

    #[test]
    fn checks_without_partitions_are_counted_until_one_has_some() {
        let p = Progress::default();
        assert_eq!((p.assigned(0), p.assigned(0)), (1, 2));
        assert_eq!(p.unassigned_checks(), 2);
        assert_eq!(p.assigned(3), 0);
        assert_eq!(p.unassigned_checks(), 0);
    }
}
