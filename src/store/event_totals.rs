//! How many events a user has, and their oldest and newest ids (`/worker_status`),
//! without walking the events table.
//!
//! Counting a user's events row by row took seconds at a million events, on every
//! poll of `/worker_status`. The counts the hub keeps answer it instead: each agent's
//! `events_count` holds its events up to the Writer's counted mark (see
//! [`super::writer_marks`]), and above the mark lies about a second of events. The
//! bounds are an index lookup at either end of each agent's events. What is still
//! counted entry by entry is bounded by the answer, not by the table: the user's
//! events without an agent (the hub's own system events, in a partial index of their
//! own) and, with `since_id`, the user's events on the cheaper side of it.

use std::collections::HashSet;

use diesel::dsl::{count_star, max, min};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

use super::schema::{agents, events};
use super::{Conn, StoreError};

/// A user's events (above `since_id`, when given): how many, the oldest id, the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTotals {
    pub count: i64,
    pub min_id: Option<i64>,
    pub max_id: Option<i64>,
}

/// The totals of `user_id`'s events (those of the user's agents and the user's events
/// without an agent), above `since_id` when given. Read in one snapshot, so the
/// agents' counts and the events above the counted mark agree.
pub fn of_user(
    conn: &mut Conn,
    user_id: i64,
    since_id: Option<i64>,
) -> Result<EventTotals, StoreError> {
    let since = since_id.unwrap_or(0).max(0);
    conn.transaction(|c| {
        let agents_part = of_agents(c, user_id, since)?;
        let (agentless, first, last): (i64, Option<i64>, Option<i64>) = events::table
            .filter(events::user_id.eq(user_id))
            .filter(events::agent_id.is_null())
            .filter(events::id.gt(since))
            .select((count_star(), min(events::id), max(events::id)))
            .first(c)?;
        Ok(EventTotals {
            count: agents_part.count + agentless,
            min_id: lowest(agents_part.min_id, first),
            max_id: agents_part.max_id.max(last),
        })
    })
}

fn lowest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The totals of the events of `user_id`'s agents above `since`.
fn of_agents(conn: &mut Conn, user_id: i64, since: i64) -> Result<EventTotals, StoreError> {
    let bounds: Bounds = diesel::sql_query(numbered(BOUNDS, conn.is_pg()))
        .bind::<BigInt, _>(since)
        .bind::<BigInt, _>(since)
        .bind::<BigInt, _>(user_id)
        .get_result(conn)?;
    let (Some(first), Some(last)) = (bounds.first, bounds.last) else {
        return Ok(EventTotals {
            count: 0,
            min_id: None,
            max_id: None,
        });
    };
    let mark = super::writer_marks::load(conn)?.events_counted_upto;
    let count = if since >= mark {
        // Only events the rows do not count yet: about a second of them at most.
        in_range(conn, user_id, since, last)?
    } else {
        let rows: Vec<(crate::ids::AgentId, i64)> = agents::table
            .filter(agents::user_id.eq(user_id))
            .select((agents::id, agents::events_count))
            .load(conn)?;
        let counted: i64 = rows.iter().map(|(_, n)| n).sum();
        let mine: HashSet<crate::ids::AgentId> = rows.iter().map(|(id, _)| *id).collect();
        let uncounted: i64 = super::writer_marks::uncounted(conn, None)?
            .iter()
            .filter(|u| mine.contains(&u.agent_id))
            .map(|u| u.n)
            .sum();
        // The counted events above `since`, from whichever side of it has fewer ids.
        let oldest = bounds.oldest.unwrap_or(first);
        let above_since = if since < oldest {
            counted
        } else if mark - since <= since - oldest {
            in_range(conn, user_id, since, mark)?
        } else {
            counted - in_range(conn, user_id, 0, since)?
        };
        above_since + uncounted
    };
    Ok(EventTotals {
        count,
        min_id: Some(first),
        max_id: Some(last),
    })
}

/// How many events of `user_id`'s agents have ids in `(after, upto]`: a range of each
/// agent's index entries.
fn in_range(conn: &mut Conn, user_id: i64, after: i64, upto: i64) -> Result<i64, StoreError> {
    let n: Count = diesel::sql_query(numbered(IN_RANGE, conn.is_pg()))
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(upto)
        .bind::<BigInt, _>(user_id)
        .get_result(conn)?;
    Ok(n.n.unwrap_or(0))
}

/// Per agent of the user (the last parameter), the lowest and highest id above the
/// first two, and the lowest at all: a lookup at an end of the agent's index each.
const BOUNDS: &str = "SELECT \
    min((SELECT min(e.id) FROM events e WHERE e.agent_id = a.id AND e.id > ?)) AS first, \
    max((SELECT max(e.id) FROM events e WHERE e.agent_id = a.id AND e.id > ?)) AS last, \
    min((SELECT min(e.id) FROM events e WHERE e.agent_id = a.id)) AS oldest \
    FROM agents a WHERE a.user_id = ?";

/// PostgreSQL sums a bigint into a numeric, hence the cast.
const IN_RANGE: &str = "SELECT CAST(sum((SELECT count(*) FROM events e \
    WHERE e.agent_id = a.id AND e.id > ? AND e.id <= ?)) AS BIGINT) AS n \
    FROM agents a WHERE a.user_id = ?";

#[derive(QueryableByName)]
struct Bounds {
    #[diesel(sql_type = Nullable<BigInt>)]
    first: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    last: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    oldest: Option<i64>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Nullable<BigInt>)]
    n: Option<i64>,
}

/// `?` placeholders as the backend numbers them: raw SQL is passed as written.
fn numbered(sql: &str, pg: bool) -> String {
    if !pg {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{EventTotals, of_user};
    use crate::store::events::{Lineage, NewEvent, insert_all};
    use crate::store::{test_conn, test_webhook_agent, writer_marks};

    /// Counted from the agent's row below the Writer's mark and from the events above
    /// it, with `since_id` on either side of the mark and near either end: the same
    /// answers as counting the rows one by one.
    #[test]
    fn totals_agree_with_the_rows_on_both_sides_of_the_counted_mark() {
        let (_dir, mut conn) = test_conn();
        let c = &mut conn;
        let agent = test_webhook_agent(c).unwrap();
        let other = test_webhook_agent(c).unwrap();
        let event = |user_id, agent_id| NewEvent {
            user_id,
            agent_id,
            event_type: "test".into(),
            payload: "{}".into(),
            keep_for_seconds: 0,
        };
        // Ids 1..=10 the agent's, 11 another user's, 12 the user's own (no agent).
        let mine = vec![event(agent.user_id, Some(agent.id)); 10];
        insert_all(c, &mine, None, Lineage::default(), 1).unwrap();
        insert_all(
            c,
            &[event(other.user_id, Some(other.id))],
            None,
            Lineage::default(),
            11,
        )
        .unwrap();
        insert_all(
            c,
            &[event(agent.user_id, None)],
            None,
            Lineage::default(),
            12,
        )
        .unwrap();
        // The Writer has counted ids up to 6 into the agents' rows.
        writer_marks::count_events(c, 6).unwrap();
        let totals = |count, min_id: i64| EventTotals {
            count,
            min_id: Some(min_id),
            max_id: Some(12),
        };
        let uid = agent.user_id;
        assert_eq!(of_user(c, uid, None).unwrap(), totals(11, 1));
        assert_eq!(of_user(c, uid, Some(0)).unwrap(), totals(11, 1));
        // Below the mark, nearer the oldest event: counted from below.
        assert_eq!(of_user(c, uid, Some(2)).unwrap(), totals(9, 3));
        // Below the mark, nearer the mark: counted between them.
        assert_eq!(of_user(c, uid, Some(5)).unwrap(), totals(6, 6));
        // At or above the mark: only uncounted events.
        assert_eq!(of_user(c, uid, Some(6)).unwrap(), totals(5, 7));
        assert_eq!(of_user(c, uid, Some(9)).unwrap(), totals(2, 10));
        assert_eq!(
            of_user(c, uid, Some(12)).unwrap(),
            EventTotals {
                count: 0,
                min_id: None,
                max_id: None
            }
        );
        assert_eq!(
            of_user(c, other.user_id, None).unwrap(),
            EventTotals {
                count: 1,
                min_id: Some(11),
                max_id: Some(11)
            }
        );
    }
}
