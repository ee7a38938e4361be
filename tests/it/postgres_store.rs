//! PostgreSQL (issue 19, the foundation): the migrations make the schema SQLite has,
//! they go up, down and up again, `muninn migrate` applies them to a postgres:// URL,
//! and event ids come in commit order under concurrent writers. The hub itself on
//! PostgreSQL: tests/postgres_hub.rs.
//!
//! Each test starts its own throwaway cluster (tests/common/postgres.rs); where
//! PostgreSQL is not installed they print SKIPPED and pass, unless
//! MUNINN_REQUIRE_POSTGRES=1 (.ci/run) makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::postgres::PgCluster;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_migrations::MigrationHarness;
use muninn::store::postgres::{PG_MIGRATIONS, establish_pg, migrate_pg, reserve_event_ids};

/// A column as both backends can describe it: its name, a type family and whether it
/// may be NULL.
type Columns = BTreeMap<String, (String, bool)>;

#[derive(Debug, PartialEq, Eq, Default)]
struct Schema {
    tables: BTreeMap<String, Columns>,
    /// Indexes created by name (not those behind a primary key or UNIQUE constraint).
    indexes: BTreeSet<String>,
}

fn family(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    let f = if t.contains("int") {
        "integer"
    } else if t.contains("text") || t.contains("char") {
        "text"
    } else if t.contains("bool") {
        "boolean"
    } else if t.contains("timestamp") {
        "timestamp"
    } else {
        return t;
    };
    f.to_string()
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn pg_schema(conn: &mut PgConnection) -> Schema {
    let columns: Vec<PgColumn> = diesel::sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                data_type::text AS data_type, (is_nullable = 'YES') AS nullable \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .unwrap();
    let mut schema = Schema::default();
    for c in columns {
        schema
            .tables
            .entry(c.table_name)
            .or_default()
            .insert(c.column_name, (family(&c.data_type), c.nullable));
    }
    let indexes: Vec<Name> = diesel::sql_query(
        "SELECT indexname::text AS name FROM pg_indexes i \
         WHERE schemaname = 'public' \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    )
    .load(conn)
    .unwrap();
    schema.indexes = indexes.into_iter().map(|n| n.name).collect();
    schema
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    notnull: i64,
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

fn sqlite_schema(conn: &mut SqliteConnection) -> Schema {
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .unwrap();
    let mut schema = Schema::default();
    for t in tables {
        let cols: Vec<SqliteColumn> = diesel::sql_query(format!(
            "SELECT name, type AS kind, \"notnull\", pk FROM pragma_table_info('{}')",
            t.name
        ))
        .load(conn)
        .unwrap();
        let entry = schema.tables.entry(t.name).or_default();
        for c in cols {
            // A primary key column is never NULL, whatever its declaration says.
            let nullable = c.notnull == 0 && c.pk == 0;
            entry.insert(c.name, (family(&c.kind), nullable));
        }
    }
    let indexes: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .load(conn)
    .unwrap();
    schema.indexes = indexes.into_iter().map(|n| n.name).collect();
    schema
}

/// How many migrations `migrations-postgres/` holds (one directory each).
fn pg_migration_count() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations-postgres"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count()
}

#[test]
fn the_postgres_migrations_make_the_schema_the_sqlite_ones_make() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("schema_check");
    let mut conn = establish_pg(&url).unwrap();
    assert_eq!(
        migrate_pg(&mut conn).unwrap(),
        pg_migration_count(),
        "every migration"
    );
    let postgres = pg_schema(&mut conn);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    let mut lite = muninn::store::DbConn::Sqlite(
        SqliteConnection::establish(&path.to_string_lossy()).unwrap(),
    );
    muninn::store::migrate(&mut lite).unwrap();
    let muninn::store::DbConn::Sqlite(lite) = &mut lite else {
        unreachable!()
    };
    let sqlite = sqlite_schema(lite);

    assert!(sqlite.tables.len() > 15, "{:?}", sqlite.tables.keys());
    assert_eq!(
        postgres.tables.keys().collect::<Vec<_>>(),
        sqlite.tables.keys().collect::<Vec<_>>(),
        "the same tables on both backends"
    );
    for (table, columns) in &sqlite.tables {
        assert_eq!(
            &postgres.tables[table], columns,
            "table {table}: columns (name -> (type, nullable)) differ between PostgreSQL and SQLite"
        );
    }
    assert_eq!(postgres.indexes, sqlite.indexes, "the same named indexes");
}

#[test]
fn every_postgres_migration_goes_up_down_and_up_again_to_the_same_schema() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("updown");
    let mut conn = establish_pg(&url).unwrap();

    let applied = conn.run_pending_migrations(PG_MIGRATIONS).unwrap().len();
    let first = pg_schema(&mut conn);
    assert!(applied > 0 && !first.tables.is_empty());

    let reverted = conn.revert_all_migrations(PG_MIGRATIONS).unwrap().len();
    assert_eq!(
        reverted, applied,
        "every migration has a down.sql that runs"
    );
    let left = pg_schema(&mut conn);
    assert!(
        left.tables.is_empty() && left.indexes.is_empty(),
        "down.sql left these behind: {left:?}"
    );

    conn.run_pending_migrations(PG_MIGRATIONS).unwrap();
    assert_eq!(
        pg_schema(&mut conn),
        first,
        "the schema after up/down/up differs"
    );
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many PostgreSQL migrations there are (one directory each).
fn migrate_cli(url: &str, data_dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muninn"))
        .args(["migrate", "--data-dir"])
        .arg(data_dir)
        .args(["--database-url", url])
        .env_remove("MUNINN_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn muninn_migrate_applies_the_schema_to_a_postgres_url_once() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("cli");
    let dir = tempfile::tempdir().unwrap();

    let (ok, out, err) = migrate_cli(&url, dir.path());
    assert!(ok, "muninn migrate failed: {err}");
    let n = pg_migration_count();
    assert_eq!(out.trim(), format!("{n} migration(s) applied to {url}"));
    let (ok, out, err) = migrate_cli(&url, dir.path());
    assert!(ok, "second muninn migrate failed: {err}");
    assert_eq!(out.trim(), format!("0 migration(s) applied to {url}"));

    let mut conn = establish_pg(&url).unwrap();
    let marks: Count = diesel::sql_query("SELECT count(*) AS n FROM writer_marks")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(marks.n, 1, "the writer's one row is there");
    // Nothing was written into the data dir: the database is elsewhere.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // A database that does not exist is named in the error; the password is not.
    let missing = url
        .replace("postgres@", "postgres:hunter2@")
        .replace("/cli", "/nope");
    let (ok, _, err) = migrate_cli(&missing, dir.path());
    assert!(!ok);
    assert!(
        err.contains("/nope") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}

/// Writers on separate connections (as separate nodes would be) insert events with ids
/// from `reserve_event_ids` while a poller reads "ids above my cursor" as the API's
/// `after=` does: it must see every committed event exactly once, never skipping a
/// lower id that committed after a higher one.
#[test]
fn a_poller_sees_every_event_once_while_writers_commit_concurrently() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("order");
    migrate_pg(&mut establish_pg(&url).unwrap()).unwrap();

    const WRITERS: i64 = 4;
    const TXS: i64 = 60;
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let url = url.clone();
        handles.push(std::thread::spawn(move || {
            let mut conn = establish_pg(&url).unwrap();
            let mut mine = Vec::new();
            for t in 0..TXS {
                let n = 1 + (w + t) % 3;
                let ids = conn
                    .transaction::<_, muninn::store::StoreError, _>(|c| {
                        let first = reserve_event_ids(c, n)?;
                        for id in first..first + n {
                            diesel::sql_query(
                                "INSERT INTO events (id, user_id, event_type, payload, created_at) \
                                 VALUES ($1, 1, 'test', '{}', now())",
                            )
                            .bind::<BigInt, _>(id)
                            .execute(c)?;
                        }
                        Ok((first..first + n).collect::<Vec<_>>())
                    })
                    .unwrap();
                mine.extend(ids);
            }
            mine
        }));
    }

    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let mut poller = establish_pg(&url).unwrap();
    let mut cursor = 0_i64;
    let mut seen = Vec::new();
    let mut done = false;
    // Bounded: the writers finish, then one last poll reads what is left.
    for _ in 0..1_000_000 {
        let finished = handles.iter().all(|h| h.is_finished());
        let rows: Vec<Id> = diesel::sql_query("SELECT id FROM events WHERE id > $1 ORDER BY id")
            .bind::<BigInt, _>(cursor)
            .load(&mut poller)
            .unwrap();
        if let Some(last) = rows.last() {
            cursor = last.id;
        }
        seen.extend(rows.into_iter().map(|r| r.id));
        if finished {
            done = true;
            break;
        }
    }
    assert!(done, "the writers did not finish within the poll budget");
    let mut written: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    written.sort_unstable();
    assert_eq!(
        seen.len(),
        written.len(),
        "events seen more than once or missed"
    );
    assert_eq!(
        seen, written,
        "the poller saw exactly the committed events, in id order"
    );
    let expected: i64 = (0..WRITERS)
        .map(|w| (0..TXS).map(|t| 1 + (w + t) % 3).sum::<i64>())
        .sum();
    assert_eq!(written.len() as i64, expected);
}
