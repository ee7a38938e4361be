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

use chrono::{Datelike, NaiveDateTime, Timelike};
use diesel::pg::Pg;
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

/// A value as it is bound: times are already text for SQLite, and kept as they are
/// for PostgreSQL, whose `timestamp` columns take no text parameter.
#[derive(Debug, Clone)]
enum Bind<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Time(Option<NaiveDateTime>, Option<String>),
}

/// The statement `S` and the values for its `?` placeholders, in order.
#[derive(Debug, Clone)]
pub struct Cached<'a, S> {
    binds: Vec<Bind<'a>>,
    statement: PhantomData<S>,
}

impl<'a, S: Statement> Cached<'a, S> {
    pub fn new(values: Vec<Value<'a>>) -> Cached<'a, S> {
        let binds = values
            .into_iter()
            .map(|v| match v {
                Value::Int(v) => Bind::Int(Some(v)),
                Value::OptInt(v) => Bind::Int(v),
                Value::Text(v) => Bind::Text(Some(v)),
                Value::OptText(v) => Bind::Text(v),
                Value::Time(t) => Bind::Time(Some(t), Some(timestamp_text(t))),
                Value::OptTime(t) => Bind::Time(t, t.map(timestamp_text)),
            })
            .collect();
        Cached {
            binds,
            statement: PhantomData,
        }
    }
}

/// `t` as diesel writes a `Timestamp` to SQLite (chrono's `"%F %T%.f"`), so that rows
/// written here and through the query builder compare and sort alike. Bound as text,
/// as diesel binds it. Written by hand: chrono's formatter interprets the format string
/// on every call, and that showed as a twentieth of the writer's time. Years outside
/// 0..=9999 and leap seconds, which follow chrono's own rules, still go through chrono.
fn timestamp_text(t: NaiveDateTime) -> String {
    let (year, nano) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        return t.format("%F %T%.f").to_string();
    }
    let mut out = String::with_capacity(29);
    push_padded(&mut out, year as u32, 4);
    for (sep, n) in [
        ('-', t.month()),
        ('-', t.day()),
        (' ', t.hour()),
        (':', t.minute()),
        (':', t.second()),
    ] {
        out.push(sep);
        push_padded(&mut out, n, 2);
    }
    if nano != 0 {
        // The shortest of milli-, micro- or nanoseconds that is exact, as `%.f` does.
        let (value, width) = if nano % 1_000_000 == 0 {
            (nano / 1_000_000, 3)
        } else if nano % 1_000 == 0 {
            (nano / 1_000, 6)
        } else {
            (nano, 9)
        };
        out.push('.');
        push_padded(&mut out, value, width);
    }
    out
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn push_padded(out: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = n / 10u32.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
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
        let mut binds = self.binds.iter();
        for part in parts {
            let bind = binds
                .next()
                .ok_or_else(|| mismatch::<S>(self.binds.len()))?;
            match bind {
                Bind::Int(v) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                Bind::Text(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Bind::Time(_, v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
            }
            out.push_sql(part);
        }
        if binds.next().is_some() {
            return Err(mismatch::<S>(self.binds.len()));
        }
        Ok(())
    }
}

/// The same text on PostgreSQL: its query builder writes `$1`, `$2`, ... where the
/// SQLite one writes `?`.
impl<S: Statement> QueryFragment<Pg> for Cached<'_, S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut parts = S::sql().split('?');
        out.push_sql(parts.next().unwrap_or_default());
        let mut binds = self.binds.iter();
        for part in parts {
            let bind = binds
                .next()
                .ok_or_else(|| mismatch::<S>(self.binds.len()))?;
            match bind {
                Bind::Int(v) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                Bind::Text(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Bind::Time(v, _) => out.push_bind_param::<Nullable<Timestamp>, _>(v)?,
            }
            out.push_sql(part);
        }
        if binds.next().is_some() {
            return Err(mismatch::<S>(self.binds.len()));
        }
        Ok(())
    }
}

impl<S: Statement> Cached<'_, S> {
    /// Runs the statement on the raw connection of `conn`'s backend, where it is
    /// prepared once (not through the multi-connection, which would build its text
    /// again on every call).
    pub fn execute(self, conn: &mut super::Conn) -> QueryResult<usize> {
        match conn {
            super::DbConn::Sqlite(c) => RunQueryDsl::execute(self, c),
            super::DbConn::Pg(c) => RunQueryDsl::execute(self, c),
        }
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

    use crate::store::test_conn as conn;

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

    /// The hand-written text is chrono's `%F %T%.f`, diesel's own encoding, for every
    /// kind of fraction, the edges of the fast path and what falls back to chrono.
    #[test]
    fn timestamps_are_written_exactly_as_diesel_writes_them() {
        use chrono::{NaiveDate, NaiveDateTime};
        let mut cases: Vec<NaiveDateTime> = Vec::new();
        for (y, mo, d) in [
            (2026, 11, 22),
            (0, 1, 1),
            (9999, 12, 31),
            (1970, 1, 1),
            (10000, 1, 1),
            (-1, 6, 15),
            (2024, 2, 29),
        ] {
            let date = NaiveDate::from_ymd_opt(y, mo, d).unwrap();
            for (h, mi, s) in [(0, 0, 0), (23, 59, 59), (9, 5, 7)] {
                for nano in [
                    0,
                    1,
                    7_000_000,
                    120_000_000,
                    999_000,
                    123_456_000,
                    123_456_789,
                    999_999_999,
                    1_000_000_000,
                    1_500_000_000,
                ] {
                    if let Some(t) = date.and_hms_nano_opt(h, mi, s, nano) {
                        cases.push(t);
                    }
                }
            }
        }
        cases.push(crate::store::now());
        assert!(cases.len() > 150);
        for t in cases {
            assert_eq!(
                super::timestamp_text(t),
                t.format("%F %T%.f").to_string(),
                "{t:?}"
            );
        }
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
