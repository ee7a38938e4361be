//! New events from other nodes, on PostgreSQL (issue 19): each writer's batch sends
//! `NOTIFY muninn_events, '<highest id>'` inside its transaction (so it is delivered on
//! commit, and never for a batch that rolled back), and each node runs one listener
//! thread with its own connection that turns the notifications of *other* nodes into
//! a [`NewEvents`] for the hub, which wakes what those events concern. On SQLite there
//! is one node and none of this runs.
//!
//! Why the ranges are exact: event ids are handed out in commit order under the
//! `writer_marks` row lock (see `postgres.rs`), and PostgreSQL delivers notifications
//! of different transactions in commit order, so each notification covers exactly the
//! ids above the previous one. A notification from this node's own writer (its
//! backend process id is in [`WriterStats`](super::WriterStats)) covers events the
//! node already routed itself: its range is skipped.
//!
//! Polling stays the fallback: every poll interval (the delivery engine's
//! `poll_interval_ms`, the hub's one polling period) the listener reads the newest
//! committed id (on PostgreSQL `writer_marks.event_ids_reserved` is exactly that: the
//! reservation is rolled back with its batch), which both proves the connection alive
//! and catches a notification that never came. After a reconnect everything is woken
//! once, since notifications sent while nobody listened are lost.
//!
//! The same connection hears the requests nodes send each other (see
//! [`node_requests`](super::node_requests)): a new request makes the node look for
//! requests it can carry out (also every [`REQUEST_SCAN`], for a notification that
//! never came or a request whose target moved here), an answer wakes the asking task.
//! And it hears deliveries put back in the queue by hand ([`REQUEUED`], payload: the
//! subscription's id): a retry or a replay asked on any node wakes the node that sends
//! that webhook, which otherwise would only look again after its next failure or event.
//!
//! diesel's `PgConnection` reads notifications without blocking (`notifications_iter`
//! drains what the socket holds) and offers no way to wait on the socket, so the
//! thread looks every [`TICK`]: a non-blocking read of a local socket, no round trip to
//! the server. That keeps us on the one PostgreSQL client the hub already links
//! rather than adding the `postgres` crate and its tokio stack for a blocking wait;
//! the cost is up to [`TICK`] of added latency per wake-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::prelude::*;

use super::node_requests::{ANSWERED, ASKED};
use super::schema::{deliveries, events, writer_marks};
use super::{Conn, DbConn, StoreError};

/// The channel every node's writer notifies and every node listens on.
pub const CHANNEL: &str = "muninn_events";
/// The channel a retry or replay announces its subscription on.
pub const REQUEUED: &str = "muninn_requeued";
/// How often the thread reads what arrived on its connection.
pub const TICK: Duration = Duration::from_millis(20);
/// How often the node looks for requests to carry out when no notification came.
pub const REQUEST_SCAN: Duration = Duration::from_secs(1);
/// Ranges wider than this are not looked into: everything is woken instead.
const MAX_SPAN: i64 = 10_000;
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Sends the notification for a batch whose highest event id is `highest`; call it
/// inside the batch's transaction. Answers this connection's backend process id, which
/// the node's listener uses to recognise its own writer's notifications.
pub fn notify(conn: &mut PgConnection, highest: i64) -> Result<i32, StoreError> {
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let row: Pid =
        diesel::sql_query("SELECT pg_backend_pid() AS pid FROM (SELECT pg_notify($1, $2)) AS sent")
            .bind::<diesel::sql_types::Text, _>(CHANNEL)
            .bind::<diesel::sql_types::Text, _>(highest.to_string())
            .get_result(conn)?;
    Ok(row.pid)
}

/// Announces `id` on `channel` (PostgreSQL; a SQLite hub is one node and has nobody
/// to tell). Inside a transaction it is delivered on commit, outside at once.
pub fn announce(conn: &mut Conn, channel: &str, id: i64) -> Result<(), StoreError> {
    if let DbConn::Pg(c) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(channel)
            .bind::<diesel::sql_types::Text, _>(id.to_string())
            .execute(c)?;
    }
    Ok(())
}

/// What committed elsewhere since the last report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewEvents {
    /// Events whose emitting agents are `sources`, addressed to `targets`, owing
    /// deliveries to `subscriptions` (each list without repeats).
    Some {
        sources: Vec<i64>,
        targets: Vec<i64>,
        subscriptions: Vec<i64>,
    },
    /// Anything may have committed (a reconnect, a range too wide to look into):
    /// everything that reads events looks again.
    Everything,
}

/// Who hears of new events: the hub.
pub trait OnNewEvents: Send + 'static {
    fn new_events(&self, events: NewEvents);
    /// False once the hub is gone: the thread then ends.
    fn alive(&self) -> bool;
    /// Another node may have asked for something this node carries out.
    fn requests_due(&self) {}
    /// Request `id` was answered.
    fn answered(&self, _id: i64) {}
}

/// Starts the listener thread on `url`. `own_pid` is the node's writer's backend
/// process id (0 until its first notification); `fallback_every` is how often the
/// newest committed id is read in case a notification never came.
pub fn spawn(
    url: String,
    own_pid: Arc<AtomicI32>,
    fallback_every: Duration,
    hub: Box<dyn OnNewEvents>,
) -> std::io::Result<()> {
    let fallback_every = fallback_every.max(TICK);
    std::thread::Builder::new()
        .name("muninn-listen".into())
        .spawn(move || run(&url, &own_pid, fallback_every, &*hub))
        .map(|_| ())
}

fn run(url: &str, own_pid: &AtomicI32, fallback_every: Duration, hub: &dyn OnNewEvents) {
    let mut backoff = BACKOFF_FIRST;
    // Set while the connection is down: its WARN is logged once, not per attempt.
    let mut down_since: Option<Instant> = None;
    while hub.alive() {
        let failed = match connect(url) {
            Ok((mut conn, mark)) => {
                if let Some(since) = down_since.take() {
                    tracing::info!(
                        down_for_seconds = since.elapsed().as_secs(),
                        "listening for other nodes' events again"
                    );
                }
                backoff = BACKOFF_FIRST;
                // Notifications sent while nobody listened are lost.
                hub.new_events(NewEvents::Everything);
                hub.requests_due();
                listen(&mut conn, mark, own_pid, fallback_every, hub)
            }
            Err(e) => Err(e),
        };
        let Err(e) = failed else { return };
        if down_since.is_none() {
            down_since = Some(Instant::now());
            tracing::warn!(error = %e, "not listening for other nodes' events; new events from them are picked up by polling until the connection is back (retrying with backoff)");
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn connect(url: &str) -> Result<(PgConnection, i64), StoreError> {
    let mut conn = super::postgres::establish_pg(url)?;
    for channel in [CHANNEL, ASKED, ANSWERED, REQUEUED] {
        diesel::sql_query(format!("LISTEN {channel}")).execute(&mut conn)?;
    }
    // Read after LISTEN: a commit after this read is notified to us.
    let mark = newest(&mut conn)?;
    Ok((conn, mark))
}

/// The newest committed event id.
fn newest(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(writer_marks::table
        .find(1_i64)
        .select(writer_marks::event_ids_reserved)
        .first(conn)?)
}

/// Reads notifications until the connection fails or the hub is gone (`Ok`).
fn listen(
    conn: &mut PgConnection,
    mut seen: i64,
    own_pid: &AtomicI32,
    fallback_every: Duration,
    hub: &dyn OnNewEvents,
) -> Result<(), StoreError> {
    let mut checked = Instant::now();
    let mut scanned = Instant::now();
    while hub.alive() {
        let mut ranges = Vec::new();
        let own = own_pid.load(Ordering::Relaxed);
        let arrived: Vec<_> = conn.notifications_iter().collect::<Result<_, _>>()?;
        let mut requests_due = false;
        let mut requeued = Vec::new();
        for n in arrived {
            let Ok(high) = n.payload.trim().parse::<i64>() else {
                continue;
            };
            match n.channel.as_str() {
                ASKED => {
                    requests_due = true;
                    continue;
                }
                ANSWERED => {
                    hub.answered(high);
                    continue;
                }
                // This node's own requeues too: the local wake-up covers only the
                // subscriptions whose sender runs here, and a second wake costs nothing.
                REQUEUED => {
                    requeued.push(high);
                    continue;
                }
                _ => {}
            }
            if high <= seen {
                continue;
            }
            if n.process_id != own {
                ranges.push((seen, high));
            }
            seen = high;
        }
        if checked.elapsed() >= fallback_every {
            checked = Instant::now();
            let mark = newest(conn)?;
            if mark > seen {
                ranges.push((seen, mark));
                seen = mark;
            }
        }
        if !ranges.is_empty() {
            hub.new_events(concerned(conn, &ranges)?);
        }
        if !requeued.is_empty() {
            requeued.sort_unstable();
            requeued.dedup();
            hub.new_events(NewEvents::Some {
                sources: Vec::new(),
                targets: Vec::new(),
                subscriptions: requeued,
            });
        }
        if requests_due || scanned.elapsed() >= REQUEST_SCAN {
            scanned = Instant::now();
            hub.requests_due();
        }
        std::thread::sleep(TICK);
    }
    Ok(())
}

/// Who the events in `ranges` (each `(after, upto]`) concern.
fn concerned(conn: &mut PgConnection, ranges: &[(i64, i64)]) -> Result<NewEvents, StoreError> {
    if ranges.iter().map(|(a, b)| b - a).sum::<i64>() > MAX_SPAN {
        return Ok(NewEvents::Everything);
    }
    let (mut sources, mut targets, mut subscriptions) = (Vec::new(), Vec::new(), Vec::new());
    for &(after, upto) in ranges {
        let rows: Vec<(Option<i64>, Option<i64>)> = events::table
            .filter(events::id.gt(after).and(events::id.le(upto)))
            .select((events::agent_id, events::target_agent_id))
            .distinct()
            .load(conn)?;
        for (source, target) in rows {
            sources.extend(source);
            targets.extend(target);
        }
        subscriptions.extend(
            deliveries::table
                .filter(
                    deliveries::event_id
                        .gt(after)
                        .and(deliveries::event_id.le(upto)),
                )
                .select(deliveries::subscription_id)
                .distinct()
                .load::<i64>(conn)?,
        );
    }
    for list in [&mut sources, &mut targets, &mut subscriptions] {
        list.sort_unstable();
        list.dedup();
    }
    Ok(NewEvents::Some {
        sources,
        targets,
        subscriptions,
    })
}
