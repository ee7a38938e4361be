//! `muninn copy-db`: a hub's whole database copied to another database, SQLite to
//! PostgreSQL or back (or to the same backend), every table, ids as they were.
//!
//! One command from database to database rather than an export file and an import: the
//! operator's move is "stop the hub, copy, point the hub at the new database", and a
//! file in between would be one more thing holding every secret, to store, move and
//! delete.
//!
//! - The source is read in one transaction (a snapshot), the target written in one
//!   transaction: a failed copy leaves the target as it was, and a hub writing to the
//!   source meanwhile could not make the copy inconsistent (it is refused anyway, see
//!   [`guard`]).
//! - Tables, columns and keys are read from the databases (`catalog`); the source must
//!   be migrated to this version of muninn and the target is migrated by the copy, and
//!   then both must hold the same tables and columns.
//! - Rows go through JSON in batches (`rows`): memory stays bounded whatever the size.
//! - Ids are copied, then everything that hands out ids is moved past them: PostgreSQL's
//!   identity sequences, and `writer_marks.event_ids_reserved`, where the writers on
//!   both backends take event ids from (see `postgres.rs`).
//! - Secrets stay sealed as they were (the copy never opens them): the hub on the
//!   target needs the same secret key.

pub mod catalog;
mod guard;
pub mod rows;

use std::collections::BTreeMap;
use std::path::PathBuf;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{DbConn, StoreError};
use catalog::{Table, ident};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The copy would do harm, or cannot be done as asked; the message says what to do.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
}

/// A database as the command line names it: a `postgres://` URL, or a SQLite path
/// (or `sqlite://` URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    pub fn parse(text: &str) -> Location {
        let t = text.trim();
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            Location::Postgres(t.to_string())
        } else {
            Location::Sqlite(crate::config::path_from_url(t))
        }
    }

    /// For messages: the path, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => super::postgres::redact(url),
        }
    }

    fn options(&self) -> super::StoreOptions {
        let mut opts = crate::config::Config::default().store_options();
        match self {
            Location::Sqlite(p) => {
                opts.path = p.clone();
                opts.pg_url = None;
            }
            Location::Postgres(url) => opts.pg_url = Some(url.clone()),
        }
        opts
    }
}

/// What to copy where.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub from: Location,
    pub to: Location,
    /// Empty a target that holds data instead of refusing it.
    pub replace: bool,
    /// The hub's data directory (`--data-dir`): a hub running there is detected too.
    pub data_dir: Option<PathBuf>,
}

/// What was copied.
#[derive(Debug, Clone, Default)]
pub struct Copied {
    /// Rows per table, in the order they were copied.
    pub tables: Vec<(String, u64)>,
    /// The highest event id copied (0 without events): new events get higher ids.
    pub last_event_id: i64,
}

impl Copied {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// Rows a fresh migration puts into the schema, which do not make a target "hold
/// data": the table and the condition its seeded rows meet.
const SEEDED: &[(&str, &str)] = &[(
    "writer_marks",
    "event_ids_reserved = 0 AND events_counted_upto = 0",
)];

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Copies the whole database `opts.from` into `opts.to`; `progress` hears each table
/// as it is done (its name and rows).
pub fn copy_database(
    opts: &CopyOptions,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<Copied, CopyError> {
    guard::a_database_file(&opts.from, "from")?;
    guard::a_database_file(&opts.to, "to")?;
    guard::not_the_same(&opts.from, &opts.to)?;
    // Held until the copy ends: no hub starts on either database meanwhile.
    let _locks = guard::no_hub_running(opts)?;
    let mut source = open_source(&opts.from)?;
    let mut target = super::establish(&opts.to.options())?;
    guard::not_one_database(&mut source, &mut target, &opts.from)?;
    guard::no_other_sessions(&mut source, &opts.from)?;
    guard::no_other_sessions(&mut target, &opts.to)?;
    super::migrate(&mut target)?;

    let tables = catalog::tables(&mut source)?;
    let target_tables = catalog::tables(&mut target)?;
    let differences = catalog::differences(&tables, &target_tables);
    if !differences.is_empty() {
        return Err(CopyError::Refused(format!(
            "the source and the target do not have the same tables and columns ({}): \
             was the source last run by another version of muninn?",
            differences.join("; ")
        )));
    }
    let order = catalog::insert_order(&target_tables);
    if !opts.replace {
        let holding = tables_with_data(&mut target, &order)?;
        if !holding.is_empty() {
            return Err(CopyError::Refused(format!(
                "the target {} already holds data (in {}); copy into an empty database, or \
                 pass --replace to delete what it holds first",
                opts.to.describe(),
                holding.join(", ")
            )));
        }
    }

    let copied = snapshot(&mut source, |source| {
        target.transaction(|target| {
            if let DbConn::Sqlite(c) = target {
                // Checked at the commit instead of at each insert (reset by the commit).
                diesel::sql_query("PRAGMA defer_foreign_keys = ON").execute(c)?;
            }
            empty(target, &order)?;
            let mut copied = Copied::default();
            for name in &order {
                let table = &tables[name];
                let n = rows::copy_table(source, target, table)
                    .map_err(|e| CopyError::Failed(format!("copying table {name} failed: {e}")))?;
                progress(name, n);
                copied.tables.push((name.clone(), n));
            }
            copied.last_event_id = move_id_marks(target, &target_tables)?;
            Ok::<_, CopyError>(copied)
        })
    })?;
    if let DbConn::Pg(c) = &mut target {
        // Fresh statistics for the planner: the tables were empty when it last looked.
        diesel::sql_query("ANALYZE").execute(c)?;
    }
    Ok(copied)
}

/// The source, which must exist and be migrated to this version.
fn open_source(location: &Location) -> Result<DbConn, CopyError> {
    if let Location::Sqlite(path) = location {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size == 0 {
            return Err(CopyError::Refused(format!(
                "the source database {} does not exist or is empty",
                path.display()
            )));
        }
    }
    let mut source = super::establish(&location.options())?;
    if pending_migrations(&mut source)? {
        return Err(CopyError::Refused(format!(
            "the source {} is not at this version's schema: run `muninn migrate \
             --database-url {}` first (with its hub stopped)",
            location.describe(),
            shell_word(&location.describe())
        )));
    }
    Ok(source)
}

fn shell_word(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:@*".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn pending_migrations(conn: &mut DbConn) -> Result<bool, CopyError> {
    use diesel_migrations::MigrationHarness;
    let pending = match conn {
        DbConn::Sqlite(c) => c.has_pending_migration(super::connection::MIGRATIONS),
        DbConn::Pg(c) => c.has_pending_migration(super::postgres::PG_MIGRATIONS),
    };
    pending.map_err(|e| CopyError::Store(StoreError::Migration(e.to_string())))
}

/// Runs `f` in a read transaction that sees one moment of the source: PostgreSQL's
/// REPEATABLE READ, SQLite's deferred transaction (WAL readers keep their snapshot).
fn snapshot<T>(
    source: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, CopyError>,
) -> Result<T, CopyError> {
    source.transaction(|s| {
        if let DbConn::Pg(c) = s {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(c)?;
        }
        f(s)
    })
}

/// The tables of `order` that hold rows other than those a migration seeds.
fn tables_with_data(conn: &mut DbConn, order: &[String]) -> Result<Vec<String>, CopyError> {
    let mut holding = Vec::new();
    for name in order {
        let filter = SEEDED
            .iter()
            .find(|(t, _)| t == name)
            .map_or(String::new(), |(_, seeded)| {
                format!(" WHERE NOT ({seeded})")
            });
        let sql = format!(
            "SELECT count(*) AS n FROM (SELECT 1 FROM {}{filter} LIMIT 1) AS x",
            ident(name)
        );
        if diesel::sql_query(sql).get_result::<Count>(conn)?.n > 0 {
            holding.push(name.clone());
        }
    }
    Ok(holding)
}

/// Deletes every row of the target (the migration's seeded rows too: the source's
/// take their place).
fn empty(target: &mut DbConn, order: &[String]) -> Result<(), CopyError> {
    if order.is_empty() {
        return Ok(());
    }
    match target {
        DbConn::Pg(c) => {
            let all: Vec<String> = order.iter().map(|t| ident(t)).collect();
            diesel::sql_query(format!("TRUNCATE {}", all.join(", "))).execute(c)?;
        }
        DbConn::Sqlite(c) => {
            for name in order.iter().rev() {
                diesel::sql_query(format!("DELETE FROM {}", ident(name))).execute(c)?;
            }
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct IdColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// Moves what hands out ids past the copied ones: PostgreSQL's identity (and serial)
/// sequences, and the event id reservation of `writer_marks` on either backend
/// (SQLite's AUTOINCREMENT keeps up with explicit ids by itself). Returns the highest
/// event id.
fn move_id_marks(target: &mut DbConn, tables: &BTreeMap<String, Table>) -> Result<i64, CopyError> {
    if let DbConn::Pg(c) = target {
        let columns: Vec<IdColumn> = diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')",
        )
        .load(c)?;
        for IdColumn {
            table_name,
            column_name,
        } in columns
        {
            // is_called = false: the next id handed out is max + 1 itself.
            diesel::sql_query(format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), \
                 coalesce((SELECT max({col}) FROM {table}), 0) + 1, false)",
                col = ident(&column_name),
                table = ident(&table_name),
            ))
            .bind::<Text, _>(ident(&table_name))
            .bind::<Text, _>(&column_name)
            .execute(c)?;
        }
    }
    if !(tables.contains_key("events") && tables.contains_key("writer_marks")) {
        return Ok(0);
    }
    let last = diesel::sql_query("SELECT coalesce(max(id), 0) AS n FROM events")
        .get_result::<Count>(target)?
        .n;
    let sql = match target {
        DbConn::Pg(_) => {
            "UPDATE writer_marks SET event_ids_reserved = GREATEST(event_ids_reserved, $1)"
        }
        DbConn::Sqlite(_) => {
            "UPDATE writer_marks SET event_ids_reserved = max(event_ids_reserved, ?)"
        }
    };
    diesel::sql_query(sql)
        .bind::<BigInt, _>(last)
        .execute(target)?;
    Ok(last)
}
