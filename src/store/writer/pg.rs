//! What only the PostgreSQL writer does: tell the other nodes of a batch's events, and
//! come back after the server went away.
//!
//! # A lost connection (issue 19)
//!
//! The writer owns one connection. When PostgreSQL restarts or stops, or the network
//! between them fails, that connection is dead for good: libpq does not reconnect. The
//! batch that meets it is answered with an error (503 to a webhook sender: nothing is
//! acknowledged that did not commit), and the writer connects again. A batch whose
//! transaction could not even begin ran nothing, so it runs again at once on the new
//! connection: after a restart of PostgreSQL while the hub was idle, the first write
//! simply commits.
//!
//! While the server cannot be reached, writes are refused at once, without trying to
//! connect for each one; a new connection is tried when a write arrives and the backoff
//! since the last try has passed ([`BACKOFF_FIRST`], doubling up to [`BACKOFF_MAX`]).
//! The loss is logged once (WARN) and the recovery once (INFO), not every attempt.
//! `/healthz` probes with a small write while writes fail, so it also brings the
//! connection back when nothing else writes.
//!
//! A connection is lost when a failed batch leaves it unable to answer `SELECT 1`, or
//! leaves diesel's transaction state broken: a constraint violation or any other error
//! of a write leaves the connection working and is not a loss. Only the failure path
//! pays that round trip.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use diesel::r2d2::R2D2Connection;

use super::emitted::Committed;
use super::health::WriterStats;
use crate::store::{Conn, DbConn, StoreError, listen, postgres};

/// The wait after a failed attempt to connect, doubled after each further one.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between attempts: how long writes may still be refused after the
/// server is back.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long one attempt to reconnect may take (see `postgres::with_connect_timeout`).
const CONNECT_TIMEOUT_SECS: u32 = 5;

/// Sends the batch's notification inside its transaction, so other nodes learn of its
/// events on commit (see `listen`), and records the writer connection's backend process
/// id, by which the node's own listener skips it. Nothing on SQLite or for a batch
/// without events.
pub(super) fn notify_batch(
    conn: &mut Conn,
    committed: &[Committed],
    stats: &WriterStats,
) -> Result<(), StoreError> {
    if let DbConn::Pg(pg) = conn
        && let Some(high) = committed.iter().map(|e| e.event.id.0).max()
    {
        let pid = listen::notify(pg, high)?;
        stats.pg_pid.store(pid, Ordering::Relaxed);
    }
    Ok(())
}

/// After a batch failed: whether its PostgreSQL connection is gone (see the module's
/// comment). Always false on SQLite, whose file the writer watches instead.
pub(super) fn connection_lost(conn: &mut Conn) -> bool {
    conn.is_pg() && (conn.is_broken() || conn.ping().is_err())
}

/// The writer's way back to PostgreSQL after its connection was lost.
pub(super) struct Reconnect {
    url: String,
    /// When the current connection was made.
    connected_at: Instant,
    /// Set while there is no working connection.
    lost: Option<Lost>,
}

struct Lost {
    since: Instant,
    /// The error that showed the loss.
    cause: String,
    /// What every refused write is told.
    reason: String,
    /// No attempt to connect before this.
    retry_at: Instant,
    backoff: Duration,
}

/// What a write is told while the connection is lost. It names the lost connection
/// (the words `/healthz` and the tests look for) and that muninn reconnects by itself.
fn refusal(lost: &str, attempt: Option<&str>) -> String {
    let last = attempt
        .map(|e| format!("; the last attempt to reconnect failed: {}", e.trim()))
        .unwrap_or_default();
    format!(
        "the connection to the database was lost ({}){last}; writes are refused until \
         PostgreSQL answers again, and muninn reconnects by itself: see that PostgreSQL \
         runs and the database exists",
        lost.trim()
    )
}

impl Reconnect {
    /// For a writer whose connection to `url` was just made.
    pub(super) fn new(url: String) -> Reconnect {
        Reconnect {
            // Every write waits behind an attempt: a shorter one than at startup.
            url: postgres::with_connect_timeout(&url, CONNECT_TIMEOUT_SECS),
            connected_at: Instant::now(),
            lost: None,
        }
    }

    /// Whether writes can run on `conn`: at once while it works. While it is lost, a
    /// new connection replaces it when an attempt is due; otherwise the answer is what
    /// the writes are refused with.
    pub(super) fn ready(&mut self, conn: &mut Conn) -> Result<(), String> {
        let Some(lost) = &mut self.lost else {
            return Ok(());
        };
        let now = Instant::now();
        if now < lost.retry_at {
            return Err(lost.reason.clone());
        }
        match postgres::establish_pg(&self.url) {
            Ok(fresh) => {
                // The dead connection is closed here.
                *conn = DbConn::Pg(fresh);
                tracing::info!(
                    down_for_ms = lost.since.elapsed().as_millis() as u64,
                    "the database writer is connected to PostgreSQL again"
                );
                self.connected_at = now;
                self.lost = None;
                Ok(())
            }
            Err(e) => {
                lost.retry_at = now + lost.backoff;
                lost.backoff = (lost.backoff * 2).min(BACKOFF_MAX);
                lost.reason = refusal(&lost.cause, Some(&e.to_string()));
                Err(lost.reason.clone())
            }
        }
    }

    /// The connection failed with `error`: logs the loss (once) and answers what the
    /// batch's writes are refused with. The first attempt to connect again may run at
    /// once, unless the connection was made only a moment ago: then it waits the
    /// backoff, so a connection that fails as soon as it is made is not retried in a
    /// loop.
    pub(super) fn lose(&mut self, error: &str) -> String {
        let now = Instant::now();
        let retry_at = (self.connected_at + BACKOFF_FIRST).max(now);
        let reason = refusal(error, None);
        if self.lost.is_none() {
            tracing::warn!(
                error = %error.trim(),
                "the database writer lost its connection to PostgreSQL; writes are answered 503 until it is back (reconnecting with backoff)"
            );
        }
        self.lost = Some(Lost {
            since: now,
            cause: error.to_string(),
            reason: reason.clone(),
            retry_at,
            backoff: BACKOFF_FIRST,
        });
        reason
    }
}
