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
    /// The process running as this id (see [`Beat::instance`]); not shown by the API.
    #[serde(skip)]
    pub instance: String,
}

/// One heartbeat of node `id` from the process `instance`.
#[derive(Debug, Clone)]
pub struct Beat<'a> {
    pub id: &'a str,
    /// Random, new at every start: tells two processes configured with one id apart.
    pub instance: &'a str,
    pub version: &'a str,
    pub started_at: NaiveDateTime,
    pub at: NaiveDateTime,
    /// A row another process wrote after this is live: it is not overwritten.
    pub live_since: NaiveDateTime,
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

/// Records that node `beat.id` is alive at `beat.at` (inserting its row on its first
/// beat). False, and nothing written, when another process (another instance) holds
/// the row under this id and beat after `beat.live_since`: two processes were started
/// with one node id, and they must not share its leases.
pub fn heartbeat(conn: &mut Conn, beat: &Beat<'_>) -> Result<bool, StoreError> {
    let sql = placeholders(
        conn,
        "INSERT INTO nodes (id, started_at, heartbeat_at, version, instance) \
         VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, \
         heartbeat_at = excluded.heartbeat_at, version = excluded.version, \
         instance = excluded.instance \
         WHERE nodes.instance = excluded.instance OR nodes.heartbeat_at < ?",
    );
    let n = diesel::sql_query(sql)
        .bind::<Text, _>(beat.id)
        .bind::<Timestamp, _>(beat.started_at)
        .bind::<Timestamp, _>(beat.at)
        .bind::<Text, _>(beat.version)
        .bind::<Text, _>(beat.instance)
        .bind::<Timestamp, _>(beat.live_since)
        .execute(conn)?;
    Ok(n == 1)
}

/// Hands node `id`'s row from the process `stale` (known to be gone) to `beat`'s;
/// false when the row is no longer `stale`'s.
pub fn take_over(conn: &mut Conn, stale: &str, beat: &Beat<'_>) -> Result<bool, StoreError> {
    let n = diesel::update(
        nodes::table
            .filter(nodes::id.eq(beat.id))
            .filter(nodes::instance.eq(stale)),
    )
    .set((
        nodes::instance.eq(beat.instance),
        nodes::started_at.eq(beat.started_at),
        nodes::heartbeat_at.eq(beat.at),
        nodes::version.eq(beat.version),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Node `id`'s row, if it has one.
pub fn find(conn: &mut Conn, id: &str) -> Result<Option<NodeRow>, StoreError> {
    Ok(nodes::table
        .find(id)
        .select(NodeRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every node that ever beat, by id.
pub fn list(conn: &mut Conn) -> Result<Vec<NodeRow>, StoreError> {
    Ok(nodes::table
        .select(NodeRow::as_select())
        .order(nodes::id.asc())
        .load(conn)?)
}

/// Forgets node `id` (it stopped cleanly), if process `instance` still holds it.
pub fn remove(conn: &mut Conn, id: &str, instance: &str) -> Result<(), StoreError> {
    diesel::delete(
        nodes::table
            .filter(nodes::id.eq(id))
            .filter(nodes::instance.eq(instance)),
    )
    .execute(conn)?;
    Ok(())
}

/// Forgets nodes whose last beat is older than `before` (long gone: a renamed host).
pub fn remove_silent(conn: &mut Conn, before: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(nodes::table.filter(nodes::heartbeat_at.lt(before))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat<'a>(id: &'a str, instance: &'a str, at: NaiveDateTime) -> Beat<'a> {
        Beat {
            id,
            instance,
            version: "1",
            started_at: at,
            at,
            live_since: at - chrono::Duration::seconds(15),
        }
    }

    #[test]
    fn a_node_beats_and_is_listed_once() {
        let (_dir, mut c) = crate::store::test_conn();
        let t0 = db_now(&mut c).unwrap();
        assert!(heartbeat(&mut c, &beat("a", "i1", t0)).unwrap());
        let t1 = t0 + chrono::Duration::seconds(5);
        assert!(heartbeat(&mut c, &beat("a", "i1", t1)).unwrap());
        assert!(heartbeat(&mut c, &beat("b", "i2", t0)).unwrap());
        let rows = list(&mut c).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].id.as_str(), rows[0].heartbeat_at), ("a", t1));
        assert_eq!(remove_silent(&mut c, t1).unwrap(), 1, "b is silent");
        remove(&mut c, "a", "other").unwrap();
        assert_eq!(
            list(&mut c).unwrap().len(),
            1,
            "only its own process removes it"
        );
        remove(&mut c, "a", "i1").unwrap();
        assert!(list(&mut c).unwrap().is_empty());
    }

    #[test]
    fn a_second_process_with_the_same_id_is_refused_while_the_first_beats() {
        let (_dir, mut c) = crate::store::test_conn();
        let t0 = db_now(&mut c).unwrap();
        assert!(heartbeat(&mut c, &beat("a", "first", t0)).unwrap());
        let t1 = t0 + chrono::Duration::seconds(5);
        assert!(
            !heartbeat(&mut c, &beat("a", "second", t1)).unwrap(),
            "the first beat 5 s ago: its row stays"
        );
        let row = find(&mut c, "a").unwrap().unwrap();
        assert_eq!((row.instance.as_str(), row.heartbeat_at), ("first", t0));
        // Silent for longer than a lease: the second takes the id over, and the
        // first, beating again, finds it taken.
        let t2 = t0 + chrono::Duration::seconds(20);
        assert!(heartbeat(&mut c, &beat("a", "second", t2)).unwrap());
        assert!(!heartbeat(&mut c, &beat("a", "first", t2)).unwrap());
        // A process known to be gone is taken over at once, only from that process.
        assert!(!take_over(&mut c, "first", &beat("a", "third", t2)).unwrap());
        assert!(take_over(&mut c, "second", &beat("a", "third", t2)).unwrap());
        assert_eq!(find(&mut c, "a").unwrap().unwrap().instance, "third");
    }

    #[test]
    fn placeholders_are_the_backends_own() {
        let (_dir, c) = crate::store::test_conn();
        assert_eq!(placeholders(&c, "a = ? AND b = ?"), "a = ? AND b = ?");
    }
}
