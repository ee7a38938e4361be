//! WAL checkpoints off the writer's thread. SQLite's automatic checkpoint runs inside
//! the commit that pushes the WAL past `wal_autocheckpoint` pages, on the connection
//! that commits: the group-commit writer, with every waiting webhook behind it. Here
//! the writer's connection has automatic checkpoints turned off, and a thread of its
//! own, on a connection of its own, copies the WAL into the database:
//! - while commits go on, a PASSIVE checkpoint at most every [`BUSY_EVERY`] or once
//!   the WAL has grown by [`BUSY_BYTES`]: it copies what no reader still needs and
//!   never waits for the writer or a reader, so the writer keeps committing meanwhile;
//!   once it has copied everything, the writer's next transaction starts the WAL over;
//! - once the writer has been idle for [`IDLE_AFTER`], a TRUNCATE checkpoint empties
//!   the WAL file. It holds the write lock while it runs, which is why it waits for
//!   an idle writer, and it gives up after [`TRUNCATE_WAIT`] rather than wait on a
//!   slow reader.
//!
//! Durability is unchanged: a commit is in the WAL (and with `synchronous=FULL`
//! fsynced) before the writer answers, whichever thread later copies it; a checkpoint
//! syncs the WAL before it copies and the database file after.

use std::path::PathBuf;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::Integer;

use diesel::SqliteConnection;

use super::{StoreError, StoreOptions, WriterStats, establish_sqlite};

/// How often the thread looks at the writer's progress and the WAL's size.
const TICK: Duration = Duration::from_millis(100);
/// While commits go on: a PASSIVE checkpoint at least this often...
const BUSY_EVERY: Duration = Duration::from_secs(1);
/// ...or sooner, once the WAL file has grown by this much (SQLite's own default
/// threshold is 1 000 pages, 4 MiB).
const BUSY_BYTES: u64 = 16 << 20;
/// No commit for this long: the writer is idle, the WAL can be emptied.
const IDLE_AFTER: Duration = Duration::from_secs(1);
/// How long a TRUNCATE checkpoint waits for readers before it gives up (until the
/// next idle moment).
const TRUNCATE_WAIT: Duration = Duration::from_millis(50);

/// The writer's connection: no automatic checkpoints, [`spawn`]'s thread does them.
pub fn disable_auto(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    conn.batch_execute("PRAGMA wal_autocheckpoint = 0")
        .map_err(|e| StoreError::Open {
            path: "writer connection".into(),
            reason: format!("turning automatic checkpoints off failed: {e}"),
        })
}

#[derive(diesel::QueryableByName)]
struct CheckpointRow {
    #[diesel(sql_type = Integer)]
    busy: i32,
    #[diesel(sql_type = Integer)]
    log: i32,
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

/// Starts the checkpoint thread for the database at `opts.path`. It follows the
/// writer through `stats` (its batch count), and ends when the writer has stopped
/// or its stats are gone.
pub fn spawn(opts: &StoreOptions, stats: Weak<WriterStats>) -> Result<(), StoreError> {
    let mut conn = establish_sqlite(&StoreOptions {
        busy_timeout: TRUNCATE_WAIT,
        ..opts.clone()
    })?;
    let wal = wal_path(&opts.path);
    std::thread::Builder::new()
        .name("muninn-checkpoint".into())
        .spawn(move || run(&mut conn, &wal, &stats))
        .map_err(|e| StoreError::Open {
            path: "checkpoint thread".into(),
            reason: e.to_string(),
        })?;
    Ok(())
}

fn wal_path(db: &std::path::Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

fn wal_len(wal: &std::path::Path) -> u64 {
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Which checkpoint is due, from what the thread sees each tick: the writer's batch
/// count and the WAL file's length. Kept apart from the thread so it can be tested
/// without a clock.
#[derive(Debug)]
struct Policy {
    seen: usize,
    last_commit: Instant,
    last_passive: Instant,
    len_at_passive: u64,
    /// Commits since the last PASSIVE, and since the last complete TRUNCATE.
    passive_due: bool,
    truncate_due: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Passive,
    Truncate,
}

impl Mode {
    fn sql(self) -> &'static str {
        match self {
            Mode::Passive => "PASSIVE",
            Mode::Truncate => "TRUNCATE",
        }
    }
}

impl Policy {
    fn new(now: Instant, wal_len: u64) -> Policy {
        Policy {
            seen: 0,
            last_commit: now,
            last_passive: now,
            len_at_passive: wal_len,
            passive_due: false,
            // A WAL left by the last run is emptied at the first idle moment.
            truncate_due: true,
        }
    }

    fn due(&mut self, batches: usize, wal_len: u64, now: Instant) -> Option<Mode> {
        if batches != self.seen {
            self.seen = batches;
            self.last_commit = now;
            self.passive_due = true;
            self.truncate_due = true;
        }
        let grown = wal_len.saturating_sub(self.len_at_passive) >= BUSY_BYTES;
        if self.passive_due && (now.duration_since(self.last_passive) >= BUSY_EVERY || grown) {
            Some(Mode::Passive)
        } else if self.truncate_due && now.duration_since(self.last_commit) >= IDLE_AFTER {
            Some(Mode::Truncate)
        } else {
            None
        }
    }

    /// After a checkpoint of `mode` ran; `complete` when it copied the whole WAL.
    fn ran(&mut self, mode: Mode, complete: bool, wal_len: u64, now: Instant) {
        match mode {
            Mode::Passive => {
                self.passive_due = false;
                self.last_passive = now;
                self.len_at_passive = wal_len;
            }
            // An incomplete TRUNCATE (a reader held it off) is tried again next tick.
            Mode::Truncate if complete => {
                self.truncate_due = false;
                self.passive_due = false;
                self.len_at_passive = 0;
            }
            Mode::Truncate => {}
        }
    }
}

fn run(conn: &mut SqliteConnection, wal: &std::path::Path, stats: &Weak<WriterStats>) {
    let mut policy = Policy::new(Instant::now(), wal_len(wal));
    loop {
        std::thread::sleep(TICK);
        let Some(stats) = stats.upgrade() else { break };
        if stats.stopped.load(Ordering::Relaxed) {
            break;
        }
        let batches = stats.batches.load(Ordering::Relaxed);
        drop(stats);
        if let Some(mode) = policy.due(batches, wal_len(wal), Instant::now()) {
            let complete = checkpoint(conn, mode.sql());
            policy.ran(mode, complete, wal_len(wal), Instant::now());
        }
    }
}

/// One checkpoint; whether it copied the whole WAL. Failures are logged and tried
/// again later: the WAL only grows meanwhile, nothing is lost.
fn checkpoint(conn: &mut SqliteConnection, mode: &str) -> bool {
    let started = Instant::now();
    let got =
        diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")).load::<CheckpointRow>(conn);
    let took = started.elapsed();
    match got.map(|mut rows| rows.pop()) {
        Ok(Some(r)) => {
            tracing::debug!(
                mode,
                busy = r.busy,
                wal_frames = r.log,
                copied = r.checkpointed,
                took_us = took.as_micros() as u64,
                "WAL checkpoint"
            );
            r.busy == 0 && r.log == r.checkpointed
        }
        Ok(None) => false,
        Err(e) => {
            tracing::debug!(mode, error = %e, "WAL checkpoint did not run; trying again later");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_while_busy_truncate_when_idle() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = Policy::new(t0, 0);
        // Commits under a second apart: nothing yet, then a PASSIVE once a second.
        assert_eq!(p.due(1, 4096, at(100)), None);
        assert_eq!(p.due(2, 8192, at(900)), None);
        assert_eq!(p.due(3, 8192, at(1000)), Some(Mode::Passive));
        p.ran(Mode::Passive, true, 8192, at(1000));
        assert_eq!(p.due(3, 8192, at(1100)), None);
        // The WAL grows by 16 MiB within the second: PASSIVE at once.
        assert_eq!(p.due(4, 8192 + BUSY_BYTES, at(1200)), Some(Mode::Passive));
        p.ran(Mode::Passive, true, 8192 + BUSY_BYTES, at(1200));
        // No commit for a second: TRUNCATE, retried until it is complete, then quiet.
        assert_eq!(p.due(4, 1 << 20, at(2100)), None);
        assert_eq!(p.due(4, 1 << 20, at(2200)), Some(Mode::Truncate));
        p.ran(Mode::Truncate, false, 1 << 20, at(2200));
        assert_eq!(p.due(4, 1 << 20, at(2300)), Some(Mode::Truncate));
        p.ran(Mode::Truncate, true, 0, at(2300));
        assert_eq!(p.due(4, 0, at(9000)), None);
        // A commit after the idle spell starts the cycle again.
        assert_eq!(p.due(5, 4096, at(9100)), Some(Mode::Passive));
    }

    #[test]
    fn a_checkpoint_on_its_own_connection_empties_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let opts = config.store_options();
        let mut writer = establish_sqlite(&opts).unwrap();
        disable_auto(&mut writer).unwrap();
        writer
            .batch_execute("CREATE TABLE t (x TEXT); INSERT INTO t VALUES (zeroblob(100000));")
            .unwrap();
        let wal = wal_path(&opts.path);
        assert!(wal_len(&wal) > 100_000, "the write is in the WAL");
        let mut other = establish_sqlite(&opts).unwrap();
        assert!(checkpoint(&mut other, "TRUNCATE"));
        assert_eq!(wal_len(&wal), 0);
        let n: Vec<CheckpointRow> = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
            .load(&mut writer)
            .unwrap();
        assert_eq!(n[0].log, 0, "nothing left to copy");
    }
}
