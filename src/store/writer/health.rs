//! The writer's health and queue depth: the running totals `/worker_status` and the
//! metrics read, whether writes commit (as `/healthz` reports it), and the signal that
//! the writer falls behind its queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

/// Running totals, read by /worker_status and the metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub queued: AtomicUsize,
    pub batches: AtomicUsize,
    pub jobs: AtomicUsize,
    pub last_batch_size: AtomicUsize,
    pub last_commit_micros: AtomicUsize,
    /// Events were committed that the agents' counts do not include yet.
    pub uncounted: AtomicBool,
    /// Batches that did not commit, since start.
    pub failed_batches: AtomicUsize,
    /// Set when the writer thread has stopped (the checkpoint thread ends with it).
    pub stopped: AtomicBool,
    /// On PostgreSQL, the writer connection's backend process id, learnt from its
    /// first NOTIFY: the node's listener skips its own writer's notifications.
    pub pg_pid: Arc<AtomicI32>,
    /// Set while the latest batch failed; the details are in `health`.
    pub(super) failing: AtomicBool,
    /// Set while the queue is deeper than `behind_at` (see [`behind_signal`]).
    pub(super) behind: AtomicBool,
    pub(super) behind_at: AtomicUsize,
    pub(super) health: std::sync::Mutex<WriteHealth>,
}

/// Whether writes work, as `/healthz` reports it.
#[derive(Debug, Clone, Default)]
pub struct WriteHealth {
    /// Set once the database file was deleted or replaced: every write is refused.
    pub database_gone: Option<String>,
    /// The latest batch's error, when it failed.
    pub last_error: Option<String>,
    /// Batches failed in a row, up to the latest one.
    pub failures_in_a_row: usize,
    /// When the current run of failures began.
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
}

impl WriteHealth {
    /// Why writes do not work right now, if they do not.
    pub fn problem(&self) -> Option<String> {
        if let Some(gone) = &self.database_gone {
            return Some(gone.clone());
        }
        self.last_error.as_ref().map(|e| {
            format!(
                "the last {} write batch(es) failed to commit: {e}",
                self.failures_in_a_row
            )
        })
    }
}

impl WriterStats {
    /// A copy of the write health.
    pub fn health(&self) -> WriteHealth {
        self.health
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn with_health(&self, f: impl FnOnce(&mut WriteHealth)) {
        match self.health.lock() {
            Ok(mut h) => f(&mut h),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Records a batch's outcome. Touches the lock only when the state changes or
    /// writes are failing, so a healthy writer pays one atomic load per batch.
    pub(super) fn record(&self, outcome: Result<(), &str>) {
        match outcome {
            Ok(()) => {
                // A load first: a healthy writer does not write the shared cache line.
                if self.failing.load(Ordering::Relaxed)
                    && self.failing.swap(false, Ordering::Relaxed)
                {
                    let mut failed = 0;
                    self.with_health(|h| {
                        failed = h.failures_in_a_row;
                        h.last_error = None;
                        h.failures_in_a_row = 0;
                        h.failing_since = None;
                    });
                    tracing::info!(failed_batches = failed, "writes commit again");
                }
            }
            Err(e) => {
                self.failed_batches.fetch_add(1, Ordering::Relaxed);
                crate::ops::metrics::writer_failure();
                self.failing.store(true, Ordering::Relaxed);
                self.with_health(|h| {
                    h.last_error = Some(e.to_string());
                    h.failures_in_a_row += 1;
                    h.failing_since.get_or_insert_with(chrono::Utc::now);
                });
            }
        }
    }

    pub(super) fn record_gone(&self, reason: &str) {
        self.failed_batches.fetch_add(1, Ordering::Relaxed);
        crate::ops::metrics::writer_failure();
        self.failing.store(true, Ordering::Relaxed);
        self.with_health(|h| {
            if h.database_gone.is_none() {
                h.database_gone = Some(reason.to_string());
                h.failing_since.get_or_insert_with(chrono::Utc::now);
            }
        });
    }
}

/// Logs the queue crossing `behind_at` upwards (WARN, the writer falls behind the
/// writes asked of it) and falling back under half of it (caught up), each once per
/// crossing; the gap between the two keeps a queue hovering at the line from logging
/// every write. Returns whether the writer now counts as behind.
pub(super) fn behind_signal(stats: &WriterStats, depth: usize) -> bool {
    let at = stats.behind_at.load(Ordering::Relaxed).max(1);
    if depth >= at {
        if !stats.behind.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                signal = "writer_behind",
                queue_depth = depth,
                threshold = at,
                "the database writer is falling behind: writes are queueing (muninn_writer_queue_depth)"
            );
        }
    } else if depth < at / 2 && stats.behind.swap(false, Ordering::Relaxed) {
        tracing::warn!(
            signal = "writer_caught_up",
            queue_depth = depth,
            threshold = at,
            "the database writer caught up with its queue"
        );
    }
    stats.behind.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    #[test]
    fn falling_behind_is_flagged_on_crossing_and_cleared_under_half() {
        let stats = super::WriterStats::default();
        stats.behind_at.store(100, Ordering::Relaxed);
        assert!(!super::behind_signal(&stats, 99));
        assert!(super::behind_signal(&stats, 100));
        assert!(super::behind_signal(&stats, 60), "still behind above half");
        assert!(!super::behind_signal(&stats, 49), "caught up under half");
    }

    #[test]
    fn falling_behind_and_catching_up_are_each_logged_once_with_their_fields() {
        let stats = super::WriterStats::default();
        stats.behind_at.store(100, Ordering::Relaxed);
        let lines = crate::ops::logging::captured_json(|| {
            for depth in [10, 100, 150, 99, 60, 49, 10, 120] {
                super::behind_signal(&stats, depth);
            }
        });
        let signals: Vec<(&str, &str, u64)> = lines
            .iter()
            .map(|l| {
                (
                    l["level"].as_str().unwrap(),
                    l["fields"]["signal"].as_str().unwrap(),
                    l["fields"]["queue_depth"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            signals,
            [
                ("WARN", "writer_behind", 100),
                ("WARN", "writer_caught_up", 49),
                ("WARN", "writer_behind", 120)
            ],
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| l["fields"]["threshold"] == 100));
    }
}
