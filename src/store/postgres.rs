//! PostgreSQL: the connection and its migrations (`migrations-postgres/`, the same
//! schema as the SQLite `migrations/` in PostgreSQL's words).
//!
//! The store runs on both backends: `Conn` is the multi-connection of `backend.rs`,
//! so every table module's query compiles once and runs on SQLite or PostgreSQL, and
//! `muninn serve`, `migrate`, `user`, `token` and `secrets` take a `postgres://` URL.
//! The SQLite-only tuning (pragmas in `connection.rs`, the cached statements, the
//! group-commit writer's id blocks) stays on the SQLite side.
//!
//! # Event ids in commit order (issue 19, "events are read in commit order")
//!
//! Every poller (`/api/events?after=ID`, agents' catch-up, feeds, the delivery outbox)
//! reads "ids above my cursor". That is only safe if an event never becomes visible
//! with an id below one already seen. On SQLite the single writer guarantees it. On
//! PostgreSQL with several writers (nodes) a sequence would not: transaction A takes
//! id 10, B takes 11 and commits first, a poller reads 11 and moves its cursor past 10
//! before A commits, and event 10 is never read.
//!
//! Decision: event ids are handed out from the one row of `writer_marks`
//! (`event_ids_reserved`) by [`reserve_event_ids`], an `UPDATE ... RETURNING` inside
//! the transaction that inserts the events. The update's row lock is held until that
//! transaction ends, so a second writer's reservation waits for the first to commit
//! (or roll back): ids are assigned in commit order, and a reader that sees id N has
//! already been able to see every committed id below N. A rolled-back reservation
//! leaves a gap, which pollers tolerate (they never wait for a missing id).
//!
//! The cost is that event-inserting transactions are serialized cluster-wide from the
//! reservation to the commit. Each node keeps a group-commit writer, as on SQLite, so
//! one reservation covers a whole batch: the writer does everything else of the batch
//! first and reserves the ids as late as possible, then inserts the events and the
//! rows that name them (deliveries) and commits. The lock is then held for the inserts
//! and one commit (one WAL flush) per batch, not per event. The alternative, readers
//! that stop below the oldest transaction still in flight (`pg_snapshot_xmin` with a
//! transaction id stored per event), needs no lock, but every cursor of the public API
//! would have to become a (transaction, id) pair; the id cursor is a contract
//! (`/api/events?after=`), so the lock is the better trade until measurements say
//! otherwise.
//!
//! # The store on both backends: where it stands
//!
//! Built:
//! - `#[derive(diesel::MultiConnection)] enum DbConn { Pg, Sqlite }` is `Conn`; the
//!   readers draw from one r2d2 pool of it for either backend (`connection.rs`).
//!   The cached statements (`cached.rs`) match the raw connection out of the enum and
//!   run prepared on it, on SQLite as before; on PostgreSQL the same text is written
//!   with `$n` placeholders and typed timestamps.
//! - What the multi-backend cannot say or says differently is per backend: upserts
//!   (`per_backend!`), `RETURNING` a row (`backend::columns`), raw SQL with
//!   placeholders (`events`, `writer_marks`, `hub/upgrade.rs`), `strftime` in
//!   `events::set_expiry` (`make_interval` on PostgreSQL), SQLite's `max()` of two
//!   values in `writer_marks::count_events` (`GREATEST`), the PRAGMAs and the
//!   `BEGIN IMMEDIATE` of `sealed`, the database file's marker and watch.
//! - The group-commit writer on PostgreSQL takes each insert's ids with
//!   [`reserve_event_ids`] inside the batch's transaction (so the row lock is held
//!   from the batch's first event to its commit, not only from a reservation at the
//!   end of the batch: simpler, and still one commit per batch); the SQLite id blocks
//!   are not written there.
//!
//! The integration suite on PostgreSQL (`MUNINN_TEST_BACKEND=postgres` puts every
//! `TestHub` on a throwaway cluster): of the 42 files whose hubs are TestHubs, 32 were
//! run in session 29 (29 passed whole, 3 had a test reaching for the SQLite file) and
//! the other 10 in session 30: 9 passed as they were (scenarios, standard_v1a,
//! target_guard, template_sandbox, tokens, website_agent, wild_end_to_end,
//! wild_scenarios, worker_status), secrets_at_rest read the SQLite file. The four
//! now have a PostgreSQL form and pass on both backends: `credentials` and
//! `secrets_at_rest` read the cluster's relation files and write-ahead log after a
//! `CHECKPOINT` (`files_hold` in `tests/common/postgres.rs`; `secrets_at_rest`'s clear
//! rows of an earlier version are written to the cluster before the hub starts, and
//! there the rows are checked, not the files: PostgreSQL keeps replaced row versions
//! until VACUUM), `outbound` corrupts its row through a `PgConnection`, and
//! `resilience` drops the database under the running hub (`DROP DATABASE ... WITH
//! (FORCE)`): writes answer 503 with the reason (a failed BEGIN on PostgreSQL is a lost
//! connection, see the writer) and reads give up after 5 s. A PostgreSQL restart needs
//! no restart of the hub: the writer connects again by itself (`store/writer/pg.rs`),
//! the read pools replace their dead connections as they hand them out, and the
//! listener reconnects (`listen.rs`); `postgres_restart` tests it.
//! `.ci/run` runs a representative part of the suite on PostgreSQL as well (its
//! comment says which and why). Not measured yet: the SQLite ingest rate A/B against
//! the commit before the switch (the webhook path's only statement is the cached event
//! insert, now reached through one match).
//!
//! Moving an existing hub's data: `copy` (`muninn copy-db`), SQLite to PostgreSQL and
//! back.
//!
//! Several nodes as equals (issue 19, `cluster/`): each node records a heartbeat in
//! `nodes`; each agent and each subscription runs on the one node holding its lease in
//! `leases` (taken and renewed by one conditional upsert, `leases.rs`); a scheduled
//! tick is recorded in `schedule_ticks` before it runs, so it fires once cluster-wide;
//! deliveries are claimed with `FOR UPDATE SKIP LOCKED` under renewed leases
//! (`claims.rs`), and a dead node's leases and claims expire into a live node's hands.
//! Lease and claim times are the database's clock (`nodes::db_now`), so the nodes'
//! own clocks need not agree. The failover test (`tests/it/cluster.rs`) runs two node
//! processes on one database and kills one mid-load.
//!
//! Shared by every node of one database: new events wake the other nodes through
//! LISTEN/NOTIFY (`listen.rs`, `hub/remote.rs`, which also invalidates their feed
//! caches; the lease round's re-read at each heartbeat stays as the fallback), inbound
//! rate limits are counted per minute in the database (`rate_windows.rs`), and the
//! first request with an idempotency key wins through the table's unique key
//! (`idempotency_keys::claim`).

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::StoreError;
use super::schema::writer_marks;

pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations-postgres");

/// Seconds one connection attempt may take, unless the URL sets `connect_timeout`.
pub const CONNECT_TIMEOUT_SECONDS: u32 = 10;

/// Connects to `url` (`postgres://user:password@host:port/database`, or libpq's
/// `key=value` form), giving up after [`CONNECT_TIMEOUT_SECONDS`] unless the URL says
/// otherwise.
pub fn establish_pg(url: &str) -> Result<PgConnection, StoreError> {
    let timed = with_connect_timeout(url, CONNECT_TIMEOUT_SECONDS);
    PgConnection::establish(&timed).map_err(|e| StoreError::Open {
        path: redact(url),
        reason: without_password(&e.to_string(), url),
    })
}

/// `url` with libpq's `connect_timeout` when it sets none. libpq's own default is to
/// wait as long as the operating system does: a host gone from the network, or a port
/// that accepts and never answers (a firewall, another service), would hold a starting
/// `muninn serve`, a copy or a reconnecting writer for minutes instead of failing with
/// a message.
pub fn with_connect_timeout(url: &str, seconds: u32) -> String {
    if url.contains("connect_timeout=") {
        return url.to_string();
    }
    if !url.contains("://") {
        // The `key=value ...` form.
        return format!("{url} connect_timeout={seconds}");
    }
    // Appended as text, not through a URL parser that would re-encode the rest: the
    // password must reach libpq, and `without_password`, exactly as written.
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout={seconds}")
}

/// `reason` with the URL's password cut out: libpq repeats a part of the URL it cannot
/// read (`invalid percent-encoded token: "..."`), the password included.
fn without_password(reason: &str, url: &str) -> String {
    // libpq's reading: the user info ends at the first '@' or '/' after the scheme.
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['@', '/']).unwrap_or(rest.len());
    let password = match (rest.get(end..end + 1), rest[..end].split_once(':')) {
        (Some("@"), Some((_, p))) if !p.is_empty() => p,
        _ => return reason.to_string(),
    };
    let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
    let mut out = reason.replace(password, "***");
    if !decoded.is_empty() {
        out = out.replace(decoded.as_ref(), "***");
    }
    out
}

/// Runs the pending PostgreSQL migrations; returns how many ran.
pub fn migrate_pg(conn: &mut PgConnection) -> Result<usize, StoreError> {
    conn.run_pending_migrations(PG_MIGRATIONS)
        .map(|v| v.len())
        .map_err(|e| StoreError::Migration(e.to_string()))
}

/// Reserves `n` event ids (n >= 1) and returns the first; the ids are `first..first + n`.
/// Call it inside the transaction that inserts the events, as late as possible: the
/// row lock it takes is held until that transaction ends, which is what orders ids by
/// commit (see the module documentation).
pub fn reserve_event_ids(conn: &mut PgConnection, n: i64) -> Result<i64, StoreError> {
    let n = n.max(1);
    let last: i64 = diesel::update(writer_marks::table.find(1_i64))
        .set(writer_marks::event_ids_reserved.eq(writer_marks::event_ids_reserved + n))
        .returning(writer_marks::event_ids_reserved)
        .get_result(conn)?;
    Ok(last - n + 1)
}

/// Takes the row lock [`reserve_event_ids`] takes, without reserving: held until the
/// transaction ends, it orders this transaction after every event-writing transaction
/// in flight on any node (see `idempotency_keys::claim`).
pub fn lock_event_order(conn: &mut PgConnection) -> Result<(), StoreError> {
    writer_marks::table
        .find(1_i64)
        .select(writer_marks::event_ids_reserved)
        .for_update()
        .first::<i64>(conn)?;
    Ok(())
}

/// The size of the database on disk (`pg_database_size`), for the admin summary:
/// SQLite's is read from its files instead.
pub fn database_bytes(conn: &mut PgConnection) -> Result<u64, StoreError> {
    #[derive(QueryableByName)]
    struct Size {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let size: Size =
        diesel::sql_query("SELECT pg_database_size(current_database()) AS n").get_result(conn)?;
    Ok(u64::try_from(size.n).unwrap_or(0))
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Cannot fail: a URL with a password has a host.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(an unreadable PostgreSQL URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        let r = redact("postgres://muninn:s3cret@db.example:5432/muninn");
        assert_eq!(r, "postgres://muninn:***@db.example:5432/muninn");
        assert_eq!(
            redact("postgres://db.example/muninn"),
            "postgres://db.example/muninn"
        );
        assert!(!redact("postgres://u:s3cret@[bad").contains("s3cret"));
    }

    #[test]
    fn a_connection_attempt_gives_up_unless_the_url_sets_its_own_timeout() {
        assert_eq!(
            with_connect_timeout("postgres://u:p@db:5432/muninn", 5),
            "postgres://u:p@db:5432/muninn?connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgres://db/muninn?sslmode=require", 10),
            "postgres://db/muninn?sslmode=require&connect_timeout=10"
        );
        assert_eq!(
            with_connect_timeout("host=db dbname=muninn", 10),
            "host=db dbname=muninn connect_timeout=10"
        );
        let own = "postgres://db/muninn?connect_timeout=30";
        assert_eq!(with_connect_timeout(own, 10), own);
    }

    #[test]
    fn a_password_libpq_repeats_is_cut_from_its_message() {
        let url = "postgres://u:s3cret%zz@127.0.0.1:1/db";
        let said = "invalid percent-encoded token: \"s3cret%zz\"";
        assert_eq!(
            without_password(said, url),
            "invalid percent-encoded token: \"***\""
        );
        let url = "postgres://u:p%40ss@h/db";
        assert_eq!(
            without_password("bad p@ss and p%40ss", url),
            "bad *** and ***"
        );
        assert_eq!(
            without_password("no user info", "postgres://h/db"),
            "no user info"
        );
    }
}
