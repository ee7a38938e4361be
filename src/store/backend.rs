//! The one connection type of `store/`: SQLite or PostgreSQL, chosen by the database
//! URL when the store opens.
//!
//! `#[derive(diesel::MultiConnection)]` lets every query written in diesel's DSL
//! compile once and run on either backend, so the table modules take `&mut Conn` and
//! never name a backend. What one backend says differently (SQLite's `strftime`,
//! PostgreSQL's `$1` placeholders in raw SQL, upserts, which the multi-backend does
//! not offer) is written per backend with [`per_backend!`](crate::per_backend) or a
//! match on [`DbConn`]. The cached statements of `cached.rs` match the raw
//! `SqliteConnection` out of [`DbConn::Sqlite`], so the writer's hot path pays
//! nothing for the second backend.
//!
//! This file holds only the enum: the derive brings every name of this module into
//! the code it generates.

use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;

/// A connection to the hub's database. PostgreSQL first: diesel's `establish` on this
/// enum would try the variants in order and SQLite accepts any path, but the store
/// always builds the variant itself (see `connection.rs`).
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

impl DbConn {
    /// True on PostgreSQL.
    pub fn is_pg(&self) -> bool {
        matches!(self, DbConn::Pg(_))
    }
}

/// The columns `T` is read from, for `.returning(columns::<T>()).get_result::<T>(..)`.
/// `T::as_returning()` through the multi-connection would hand each backend a
/// selection typed for the multi-backend, which neither can write; the plain column
/// tuple both can, and `T`'s `Queryable` reads it in the same order.
pub fn columns<T: diesel::Selectable<diesel::sqlite::Sqlite>>() -> T::SelectExpression {
    T::construct_selection()
}

/// Runs `$body` with `$c` bound to the raw connection of whichever backend `$conn`
/// is: for statements the multi-backend cannot express (upserts), written once and
/// compiled for each backend.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConn::Pg($c) => $body,
            $crate::store::DbConn::Sqlite($c) => $body,
        }
    };
}
