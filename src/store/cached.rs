//! Statements with a fixed SQL text, prepared once per connection.
//!
//! diesel caches a prepared statement only when its query type alone fixes the SQL
//! text. `UPDATE`s, upserts and raw `sql_query`s are marked "unsafe to cache" (one Rust
//! type can produce different SQL, e.g. an `Option` field in a changeset), so diesel
//! parses and plans them again on every call, and transactions' `SAVEPOINT`s go through
//! `sqlite3_exec`, which does the same. Profiling the writer under webhook load showed
//! that re-preparing cost more than inserting the events themselves.
//!
//! A [`Cached`] statement is a constant SQL text with `?` placeholders and its values.
//! It never marks itself unsafe, so diesel keys its cache by the SQL text, which is
//! correct for any statement: two calls share a prepared statement only if their text
//! is the same. Use it for the statements on the hot paths; everything else stays in
//! the query builder.

use chrono::NaiveDateTime;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::Error;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl};

/// One value bound to a `?` of a [`Cached`] statement.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Time(NaiveDateTime),
    OptTime(Option<NaiveDateTime>),
}

/// A constant SQL text and the values for its `?` placeholders, in order.
#[derive(Debug, Clone)]
pub struct Cached<'a> {
    sql: &'static str,
    values: Vec<Value<'a>>,
}

impl<'a> Cached<'a> {
    pub fn new(sql: &'static str, values: Vec<Value<'a>>) -> Cached<'a> {
        Cached { sql, values }
    }
}

impl QueryId for Cached<'_> {
    type QueryId = ();
    // No static id: diesel then keys the cache by the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Sqlite> for Cached<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        let mut parts = self.sql.split('?');
        out.push_sql(parts.next().unwrap_or_default());
        let mut values = self.values.iter();
        for part in parts {
            let value = values.next().ok_or_else(|| mismatch(self))?;
            match value {
                Value::Int(v) => out.push_bind_param::<BigInt, _>(v)?,
                Value::OptInt(v) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                Value::Text(v) => out.push_bind_param::<Text, _>(*v)?,
                Value::OptText(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Value::Time(v) => out.push_bind_param::<Timestamp, _>(v)?,
                Value::OptTime(v) => out.push_bind_param::<Nullable<Timestamp>, _>(v)?,
            }
            out.push_sql(part);
        }
        if values.next().is_some() {
            return Err(mismatch(self));
        }
        Ok(())
    }
}

fn mismatch(c: &Cached<'_>) -> Error {
    Error::QueryBuilderError(
        format!(
            "statement {:?} has a different number of placeholders than its {} values",
            c.sql,
            c.values.len()
        )
        .into(),
    )
}

impl<C> RunQueryDsl<C> for Cached<'_> {}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Connection, InstrumentationEvent};
    use diesel::prelude::*;

    use super::{Cached, Value};
    use crate::store::schema::users;

    fn conn() -> (tempfile::TempDir, crate::store::Conn) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let mut conn = crate::store::establish(&config.store_options()).unwrap();
        crate::store::migrate(&mut conn).unwrap();
        (dir, conn)
    }

    /// Prepared once, then re-bound with each call's values (not the first call's).
    #[test]
    fn a_statement_is_prepared_once_and_bound_with_each_calls_values() {
        let (_dir, mut conn) = conn();
        let a = crate::store::users::insert(&mut conn, "a", false).unwrap();
        let b = crate::store::users::insert(&mut conn, "b", false).unwrap();
        let cached = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = cached.clone();
        conn.set_instrumentation(move |e: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = e {
                seen.lock().unwrap().push(sql.to_string());
            }
        });
        for (id, name) in [(a.id, "alice"), (b.id, "bob"), (a.id, "ann")] {
            let n = Cached::new(
                "UPDATE users SET name = ? WHERE id = ?",
                vec![Value::Text(name), Value::Int(id)],
            )
            .execute(&mut conn)
            .unwrap();
            assert_eq!(n, 1);
        }
        assert_eq!(
            *cached.lock().unwrap(),
            ["UPDATE users SET name = ? WHERE id = ?"]
        );
        let names: Vec<String> = users::table
            .order(users::id.asc())
            .select(users::name)
            .load(&mut conn)
            .unwrap();
        assert_eq!(names, ["ann", "bob"]);
    }

    #[test]
    fn a_wrong_number_of_values_is_an_error_not_a_panic() {
        let (_dir, mut conn) = conn();
        for values in [vec![], vec![Value::Int(1), Value::Int(2)]] {
            let err = Cached::new("UPDATE users SET is_admin = 1 WHERE id = ?", values)
                .execute(&mut conn)
                .unwrap_err();
            assert!(err.to_string().contains("placeholders"), "{err}");
        }
    }
}
