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
//! Its SQL belongs to a [`Statement`] type, and diesel keys its cache by that type: the
//! text is built and looked up only when the statement is first prepared. (Keying by
//! the text itself meant building, hashing and comparing it on every call, which showed
//! in profiles for the inbound log's long multi-row `INSERT`s.) Write them with
//! [`cached!`](crate::cached), which gives every call site its own type, so one type
//! never stands for two texts. Use them for the statements on the hot paths; everything
//! else stays in the query builder.

use std::marker::PhantomData;

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

/// A type that stands for one SQL text: diesel's statement cache is keyed by it.
pub trait Statement: 'static {
    /// Always the same text for the same type.
    fn sql() -> &'static str;
}

/// `cached!("UPDATE t SET a = ? WHERE id = ?", vec![Value::Int(1), Value::Int(2)])`: a
/// [`Cached`] statement whose SQL type is private to this call site. Only a literal is
/// accepted, so the site's text cannot vary.
#[macro_export]
macro_rules! cached {
    ($sql:literal, $values:expr $(,)?) => {{
        struct Sql;
        impl $crate::store::Statement for Sql {
            fn sql() -> &'static str {
                $sql
            }
        }
        $crate::store::Cached::<Sql>::new($values)
    }};
}

/// The statement `S` and the values for its `?` placeholders, in order.
#[derive(Debug, Clone)]
pub struct Cached<'a, S> {
    values: Vec<Value<'a>>,
    statement: PhantomData<S>,
}

impl<'a, S: Statement> Cached<'a, S> {
    pub fn new(values: Vec<Value<'a>>) -> Cached<'a, S> {
        Cached {
            values,
            statement: PhantomData,
        }
    }
}

impl<S: Statement> QueryId for Cached<'_, S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: Statement> QueryFragment<Sqlite> for Cached<'_, S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        let mut parts = S::sql().split('?');
        out.push_sql(parts.next().unwrap_or_default());
        let mut values = self.values.iter();
        for part in parts {
            let value = values
                .next()
                .ok_or_else(|| mismatch::<S>(self.values.len()))?;
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
            return Err(mismatch::<S>(self.values.len()));
        }
        Ok(())
    }
}

fn mismatch<S: Statement>(values: usize) -> Error {
    Error::QueryBuilderError(
        format!(
            "statement {:?} has a different number of placeholders than its {values} values",
            S::sql(),
        )
        .into(),
    )
}

impl<C, S> RunQueryDsl<C> for Cached<'_, S> {}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Connection, InstrumentationEvent};
    use diesel::prelude::*;

    use super::Value;
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
            let n = cached!(
                "UPDATE users SET name = ? WHERE id = ?",
                vec![Value::Text(name), Value::Int(id)]
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
            let err = cached!("UPDATE users SET is_admin = 1 WHERE id = ?", values)
                .execute(&mut conn)
                .unwrap_err();
            assert!(err.to_string().contains("placeholders"), "{err}");
        }
    }
}
