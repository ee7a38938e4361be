//! `nodes`: the muninn processes sharing the database, each with the last time it said
//! it was alive (its heartbeat). Read for the cluster view and to count the live nodes
//! a node's fair share of the work is computed from.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};

use super::schema::nodes;
use super::{Conn, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = nodes)]
pub struct NodeRow {
    pub id: String,
    pub started_at: NaiveDateTime,
    pub heartbeat_at: NaiveDateTime,
    pub version: String,
}

/// The database's clock on PostgreSQL (every node compares leases with the same
/// clock, so a node whose own clock is off cannot steal or keep a lease), the
/// process's on SQLite (one node, one clock).
pub fn db_now(conn: &mut Conn) -> Result<NaiveDateTime, StoreError> {
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = Timestamp)]
        t: NaiveDateTime,
    }
    if !conn.is_pg() {
        return Ok(super::now());
    }
    let row: Now = diesel::sql_query("SELECT (now() AT TIME ZONE 'UTC') AS t").get_result(conn)?;
    Ok(row.t)
}

/// Raw SQL written with `?` placeholders, in the backend's own spelling (`$1`... on
/// PostgreSQL). The statements passed here have no `?` inside a literal.
pub(crate) fn placeholders(conn: &Conn, sql: &str) -> String {
    if !conn.is_pg() {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Records that node `id` is alive at `at` (inserting its row on its first beat).
pub fn heartbeat(
    conn: &mut Conn,
    id: &str,
    version: &str,
    started_at: NaiveDateTime,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    let sql = placeholders(
        conn,
        "INSERT INTO nodes (id, started_at, heartbeat_at, version) VALUES (?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, \
         heartbeat_at = excluded.heartbeat_at, version = excluded.version",
    );
    diesel::sql_query(sql)
        .bind::<Text, _>(id)
        .bind::<Timestamp, _>(started_at)
        .bind::<Timestamp, _>(at)
        .bind::<Text, _>(version)
        .execute(conn)?;
    Ok(())
}

/// Every node that ever beat, by id.
pub fn list(conn: &mut Conn) -> Result<Vec<NodeRow>, StoreError> {
    Ok(nodes::table
        .select(NodeRow::as_select())
        .order(nodes::id.asc())
        .load(conn)?)
}

/// Forgets node `id` (it stopped cleanly).
pub fn remove(conn: &mut Conn, id: &str) -> Result<(), StoreError> {
    diesel::delete(nodes::table.find(id)).execute(conn)?;
    Ok(())
}

/// Forgets nodes whose last beat is older than `before` (long gone: a renamed host).
pub fn remove_silent(conn: &mut Conn, before: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(nodes::table.filter(nodes::heartbeat_at.lt(before))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_beats_and_is_listed_once() {
        let (_dir, mut c) = crate::store::test_conn();
        let t0 = db_now(&mut c).unwrap();
        heartbeat(&mut c, "a", "1", t0, t0).unwrap();
        let t1 = t0 + chrono::Duration::seconds(5);
        heartbeat(&mut c, "a", "1", t0, t1).unwrap();
        heartbeat(&mut c, "b", "1", t0, t0).unwrap();
        let rows = list(&mut c).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].id.as_str(), rows[0].heartbeat_at), ("a", t1));
        assert_eq!(remove_silent(&mut c, t1).unwrap(), 1, "b is silent");
        remove(&mut c, "a").unwrap();
        assert!(list(&mut c).unwrap().is_empty());
    }

    #[test]
    fn placeholders_are_the_backends_own() {
        let (_dir, c) = crate::store::test_conn();
        assert_eq!(placeholders(&c, "a = ? AND b = ?"), "a = ? AND b = ?");
    }
}
