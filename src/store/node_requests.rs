//! `node_requests`: API actions that need a running actor, asked on one node and
//! carried out by the node that runs the actor (issue 19, see `hub::forward`). The
//! database is the only thing the nodes share, so the request and its answer travel
//! through this table, each followed by a notification: `muninn_requests` (payload:
//! the request's id) wakes the nodes to look for requests they can carry out,
//! `muninn_answers` (payload: the id) wakes the asking node. Polling covers a lost
//! notification on both sides. The table stays small: the asking node deletes its
//! request once answered or given up, and [`prune`] removes what a dead node left.
//!
//! Timestamps are the database's clock ([`nodes::db_now`]), so nodes whose clocks
//! differ agree on a request's age. PostgreSQL only in practice: a SQLite hub is one
//! node and never asks another.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::listen::announce;
use super::nodes;
use super::schema::{leases, node_requests as r};
use super::{Conn, StoreError};

/// The channel a new request is announced on.
pub const ASKED: &str = "muninn_requests";
/// The channel an answer is announced on.
pub const ANSWERED: &str = "muninn_answers";

/// A request nobody has taken yet.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = r)]
pub struct Open {
    pub id: i64,
    /// What it is about: a lease's resource name ("agent:12", "subscription:3").
    pub resource: String,
    /// What to do, as JSON the carrying node reads.
    pub argument: String,
}

/// Stores a request from `node` and announces it; its id.
pub fn ask(
    conn: &mut Conn,
    resource: &str,
    action: &str,
    argument: &str,
    node: &str,
) -> Result<i64, StoreError> {
    let now = nodes::db_now(conn)?;
    let insert = diesel::insert_into(r::table)
        .values((
            r::resource.eq(resource),
            r::action.eq(action),
            r::argument.eq(argument),
            r::asked_by.eq(node),
            r::created_at.eq(now),
        ))
        .returning(r::id);
    let id: i64 = crate::per_backend!(conn, |c| insert.get_result(c))?;
    announce(conn, ASKED, id)?;
    Ok(id)
}

/// The node holding `resource`'s lease now, by the database's clock.
pub fn holder(conn: &mut Conn, resource: &str) -> Result<Option<String>, StoreError> {
    let now = nodes::db_now(conn)?;
    Ok(leases::table
        .filter(leases::resource.eq(resource))
        .filter(leases::expires_at.ge(now))
        .select(leases::node_id)
        .first(conn)
        .optional()?)
}

/// The requests nobody took yet that were asked less than `within` ago (older ones'
/// asking nodes stopped waiting), oldest first.
pub fn open(conn: &mut Conn, within: chrono::Duration) -> Result<Vec<Open>, StoreError> {
    let since = nodes::db_now(conn)? - within;
    Ok(r::table
        .filter(r::taken_by.is_null())
        .filter(r::answer.is_null())
        .filter(r::created_at.ge(since))
        .select(Open::as_select())
        .order(r::id.asc())
        .load(conn)?)
}

/// Takes request `id` for `node`: true when it is `node`'s to carry out (no other
/// node took it first).
pub fn take(conn: &mut Conn, id: i64, node: &str) -> Result<bool, StoreError> {
    let n = diesel::update(r::table.filter(r::id.eq(id)).filter(r::taken_by.is_null()))
        .set(r::taken_by.eq(node))
        .execute(conn)?;
    Ok(n == 1)
}

/// Writes the answer of request `id` and announces it to the asking node.
pub fn answer(conn: &mut Conn, id: i64, answer: &str) -> Result<(), StoreError> {
    let n = diesel::update(r::table.find(id))
        .set(r::answer.eq(answer))
        .execute(conn)?;
    // Gone: the asking node stopped waiting; nobody reads the answer.
    if n == 1 {
        announce(conn, ANSWERED, id)?;
    }
    Ok(())
}

/// The answer of request `id`, once written.
pub fn answer_of(conn: &mut Conn, id: i64) -> Result<Option<String>, StoreError> {
    Ok(r::table
        .find(id)
        .select(r::answer)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// Deletes request `id` (answered, or the asking node stopped waiting).
pub fn forget(conn: &mut Conn, id: i64) -> Result<(), StoreError> {
    diesel::delete(r::table.find(id)).execute(conn)?;
    Ok(())
}

/// Deletes the requests asked more than `age` ago: their asking node stopped waiting
/// long since (it died before deleting them). How many.
pub fn prune(conn: &mut Conn, age: chrono::Duration) -> Result<usize, StoreError> {
    let before: NaiveDateTime = nodes::db_now(conn)? - age;
    Ok(diesel::delete(r::table.filter(r::created_at.lt(before))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::leases as lease_rows;

    #[test]
    fn a_request_is_taken_once_answered_and_forgotten() {
        let (_dir, mut c) = crate::store::test_conn();
        let id = ask(&mut c, "agent:7", "run", "\"Run\"", "a").unwrap();
        let other = ask(&mut c, "subscription:3", "test", "{}", "a").unwrap();
        let hour = chrono::Duration::hours(1);
        let open_now = open(&mut c, hour).unwrap();
        assert_eq!(
            open_now.iter().map(|o| o.id).collect::<Vec<_>>(),
            [id, other]
        );
        assert_eq!(open_now[0].resource, "agent:7");
        assert_eq!(open_now[0].argument, "\"Run\"");

        assert!(take(&mut c, id, "b").unwrap());
        assert!(!take(&mut c, id, "c").unwrap(), "taken once");
        assert_eq!(
            open(&mut c, hour).unwrap().len(),
            1,
            "a taken one is not open"
        );
        assert_eq!(answer_of(&mut c, id).unwrap(), None, "not answered yet");
        answer(&mut c, id, "{\"Done\":[]}").unwrap();
        assert_eq!(
            answer_of(&mut c, id).unwrap().as_deref(),
            Some("{\"Done\":[]}")
        );
        forget(&mut c, id).unwrap();
        assert_eq!(answer_of(&mut c, id).unwrap(), None);
        // Answering a forgotten request changes nothing.
        answer(&mut c, id, "{}").unwrap();
        assert_eq!(answer_of(&mut c, id).unwrap(), None);

        // Too old to be waited for: not open, and pruned.
        assert!(
            open(&mut c, chrono::Duration::seconds(-60))
                .unwrap()
                .is_empty()
        );
        assert_eq!(prune(&mut c, chrono::Duration::seconds(-60)).unwrap(), 1);
        assert!(open(&mut c, hour).unwrap().is_empty());
    }

    #[test]
    fn the_holder_is_the_node_with_a_live_lease() {
        let (_dir, mut c) = crate::store::test_conn();
        assert_eq!(holder(&mut c, "agent:1").unwrap(), None);
        let now = crate::store::now();
        let until = now + chrono::Duration::seconds(30);
        assert!(lease_rows::acquire(&mut c, "agent:1", "b", now, until).unwrap());
        assert_eq!(holder(&mut c, "agent:1").unwrap().as_deref(), Some("b"));
        let past = now - chrono::Duration::seconds(30);
        assert!(lease_rows::acquire(&mut c, "agent:2", "b", past, past).unwrap());
        assert_eq!(holder(&mut c, "agent:2").unwrap(), None, "expired");
    }
}
