//! The `inbound_rate_windows` table: an inbound endpoint's requests per one-minute
//! window, shared by every node of a PostgreSQL database, so a `rate_limit` of N per
//! minute holds across nodes (issue 19). A SQLite hub is one node and keeps its
//! in-memory token bucket (`ops::rate`), which the nodes also keep in front of this.
//!
//! Fixed windows, not sliding: one row per endpoint and minute, counted by a single
//! upsert whose returned count *is* the decision (the first N requests of the minute,
//! cluster-wide, are admitted), with no read-modify-write and no floating state to
//! keep consistent between nodes. The price is the usual one of fixed windows: N at
//! the end of one minute and N at the start of the next can pass within a moment;
//! a sliding estimate would smooth that but admit a count that is only approximately
//! N, and every request would read two rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::inbound_rate_windows as w;
use super::{Conn, StoreError};

/// The window's length.
pub const WINDOW_SECONDS: i64 = 60;

/// What counting one request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// Requests counted in the current window, this one included.
    pub requests: i64,
    /// Seconds until the window ends (at least 1).
    pub window_ends_in: u64,
}

/// Counts one request at `endpoint` at time `at` (UTC). Runs outside any batch (a
/// single autocommitted statement), so it does not wait for the group commit.
pub fn count(conn: &mut Conn, endpoint: &str, at: NaiveDateTime) -> Result<Counted, StoreError> {
    let now = at.and_utc().timestamp();
    let start_secs = now.div_euclid(WINDOW_SECONDS) * WINDOW_SECONDS;
    let start = chrono::DateTime::from_timestamp(start_secs, 0).map_or(at, |t| t.naive_utc());
    let upsert = diesel::insert_into(w::table)
        .values((
            w::endpoint.eq(endpoint),
            w::window_start.eq(start),
            w::requests.eq(1_i64),
        ))
        .on_conflict((w::endpoint, w::window_start))
        .do_update()
        .set(w::requests.eq(w::requests + 1_i64))
        .returning(w::requests);
    let requests: i64 = crate::per_backend!(conn, |c| upsert.get_result(c))?;
    if requests == 1 {
        // The window's first request clears the endpoint's older windows: the table
        // keeps about one row per endpoint.
        diesel::delete(
            w::table
                .filter(w::endpoint.eq(endpoint))
                .filter(w::window_start.lt(start)),
        )
        .execute(conn)?;
    }
    Ok(Counted {
        requests,
        window_ends_in: u64::try_from(start_secs + WINDOW_SECONDS - now)
            .unwrap_or(1)
            .max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().naive_utc()
    }

    #[test]
    fn counts_per_endpoint_and_minute_and_forgets_old_minutes() {
        let (_dir, mut c) = crate::store::test_conn();
        let one = count(&mut c, "agent:1", at("2026-12-07T10:00:05Z")).unwrap();
        assert_eq!(
            one,
            Counted {
                requests: 1,
                window_ends_in: 55
            }
        );
        let two = count(&mut c, "agent:1", at("2026-12-07T10:00:59Z")).unwrap();
        assert_eq!(
            two,
            Counted {
                requests: 2,
                window_ends_in: 1
            }
        );
        assert_eq!(
            count(&mut c, "agent:2", at("2026-12-07T10:00:30Z"))
                .unwrap()
                .requests,
            1
        );
        // A new minute starts from one and drops the endpoint's older rows.
        let next = count(&mut c, "agent:1", at("2026-12-07T10:01:00Z")).unwrap();
        assert_eq!(
            next,
            Counted {
                requests: 1,
                window_ends_in: 60
            }
        );
        let rows: i64 = w::table.count().get_result(&mut c).unwrap();
        assert_eq!(rows, 2, "one row for each endpoint's current minute");
    }
}
