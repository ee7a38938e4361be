//! Every migration goes up, down and up again, one at a time, on both backends: after
//! reverting migration k the schema is exactly the one migrations 1..k made on the way
//! up (so a `down.sql` that forgets a table, an index, a column, a constraint or a
//! trigger, or drops something an earlier migration made, fails here, naming the
//! migration), the database is empty again after the last revert, and running them all
//! up again makes the schema of the first run.
//!
//! The migrations are embedded from the folders themselves, so a new migration
//! directory is covered without touching this file. The PostgreSQL half starts a
//! throwaway cluster (common/postgres.rs); where PostgreSQL is not installed it prints
//! SKIPPED and passes, unless MUNINN_REQUIRE_POSTGRES=1 (.ci/run) makes that a failure.

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::common::postgres::PgCluster;

static SQLITE: EmbeddedMigrations = embed_migrations!("migrations");
static POSTGRES: EmbeddedMigrations = embed_migrations!("migrations-postgres");

/// The embedded migrations by reference: the harness takes its source by value, and
/// `EmbeddedMigrations` is not `Copy`.
#[derive(Clone, Copy)]
struct Source(&'static EmbeddedMigrations);

impl<B: diesel::backend::Backend> MigrationSource<B> for Source {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<B>>>> {
        MigrationSource::<B>::migrations(self.0)
    }
}

/// One object of a schema: what it is, its name, and its definition.
#[derive(QueryableByName, Debug, PartialEq, Eq, Clone)]
struct Object {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    def: String,
}

/// Every table, index, view and trigger with its SQL (see [`normalize`]), diesel's
/// bookkeeping aside.
const SQLITE_SCHEMA: &str = "\
    SELECT type AS kind, name, coalesce(sql, '') AS def FROM sqlite_master \
    WHERE name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations' \
    ORDER BY 1, 2";

/// Tables, columns (in order, with type, nullability and default), indexes, constraints,
/// sequences, triggers, functions, views and enum/domain types of the public schema,
/// diesel's bookkeeping aside. Columns are numbered by rank, not by attnum: PostgreSQL
/// never reuses the number of a dropped column.
const PG_SCHEMA: &str = "\
    SELECT 'table' AS kind, table_name::text AS name, table_type::text AS def \
    FROM information_schema.tables \
    WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'column', table_name || '.' || column_name, \
           concat_ws(' ', rank() OVER (PARTITION BY table_name ORDER BY ordinal_position), \
                     data_type, is_nullable, column_default) \
    FROM information_schema.columns \
    WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'index', indexname::text, indexdef FROM pg_indexes \
    WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid) \
    FROM pg_constraint \
    WHERE connamespace = 'public'::regnamespace \
      AND conrelid::regclass::text <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'sequence', sequence_name::text, concat_ws(' ', data_type, start_value, increment) \
    FROM information_schema.sequences WHERE sequence_schema = 'public' \
    UNION ALL \
    SELECT 'trigger', event_object_table || '.' || trigger_name, \
           concat_ws(' ', action_timing, event_manipulation, action_statement) \
    FROM information_schema.triggers WHERE trigger_schema = 'public' \
    UNION ALL \
    SELECT 'function', proname || '(' || pg_get_function_identity_arguments(oid) || ')', \
           pg_get_functiondef(oid) \
    FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prokind IN ('f', 'p') \
    UNION ALL \
    SELECT 'view', table_name::text, view_definition FROM information_schema.views \
    WHERE table_schema = 'public' \
    UNION ALL \
    SELECT 'type', typname::text, typtype::text || ' ' || coalesce((SELECT string_agg(enumlabel, ',' \
           ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '') \
    FROM pg_type t WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd') \
    ORDER BY 1, 2";

/// The SQL SQLite keeps for an object, without the marks its ALTER TABLE leaves in that
/// text: ADD COLUMN appends `, col` where the table's own text had a line break, and
/// RENAME TO quotes the new name. Whitespace runs fold to one space and go away around
/// `(`, `)` and `,`; a quoted table name loses its quotes.
fn normalize(objects: Vec<Object>) -> Vec<Object> {
    objects
        .into_iter()
        .map(|o| {
            let mut def = o.def.split_whitespace().collect::<Vec<_>>().join(" ");
            for (from, to) in [
                (" ,", ","),
                (", ", ","),
                ("( ", "("),
                (" (", "("),
                (" )", ")"),
            ] {
                def = def.replace(from, to);
            }
            if let Some((name, rest)) = def
                .strip_prefix("CREATE TABLE \"")
                .and_then(|r| r.split_once('"'))
            {
                def = format!("CREATE TABLE {name}{rest}");
            }
            Object { def, ..o }
        })
        .collect()
}

/// Runs the up/down/up cycle on `conn`, reading its schema with `schema`.
fn up_down_up<B, C>(conn: &mut C, migrations: Source, schema: impl Fn(&mut C) -> Vec<Object>)
where
    B: diesel::backend::Backend,
    C: MigrationHarness<B>,
{
    // (name, version) of each, in the order they run.
    let mut all: Vec<(String, String)> = MigrationSource::<B>::migrations(&migrations)
        .unwrap()
        .iter()
        .map(|m| (m.name().to_string(), m.name().version().to_string()))
        .collect();
    all.sort_by(|a, b| a.1.cmp(&b.1));
    let n = all.len();
    assert!(n > 0, "no migrations found");

    // Up, one at a time: the schema after each.
    let mut after = vec![schema(conn)];
    assert!(
        after[0].is_empty(),
        "a new database has a schema: {:?}",
        after[0]
    );
    for (name, version) in &all {
        let ran = conn
            .run_next_migration(migrations)
            .unwrap_or_else(|e| panic!("{name}/up.sql failed: {e}"));
        assert_eq!(ran.to_string(), *version, "{name} runs in its order");
        after.push(schema(conn));
    }
    assert_ne!(after[0], after[n], "the migrations made nothing");

    // Down, one at a time: each revert gives back the schema before that migration.
    for (k, (name, version)) in all.iter().enumerate().rev() {
        let reverted = conn
            .revert_last_migration(migrations)
            .unwrap_or_else(|e| panic!("{name}/down.sql failed: {e}"));
        assert_eq!(
            reverted.to_string(),
            *version,
            "{name} reverts in its order"
        );
        assert_schema(&after[k], &schema(conn), &format!("after {name}/down.sql"));
    }

    // Up again: the schema the first run made.
    let ran = conn.run_pending_migrations(migrations).unwrap().len();
    assert_eq!(ran, n, "every migration runs again");
    assert_schema(&after[n], &schema(conn), "after the second up");
}

/// Equal schemas, or a panic naming what is missing and what is left over.
fn assert_schema(want: &[Object], got: &[Object], when: &str) {
    let missing: Vec<_> = want.iter().filter(|o| !got.contains(o)).collect();
    let extra: Vec<_> = got.iter().filter(|o| !want.contains(o)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{when} the schema differs from the one on the way up:\n  missing: {missing:#?}\n  left over or changed: {extra:#?}"
    );
}

#[test]
fn every_sqlite_migration_goes_down_to_the_schema_before_it_and_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migrations.db");
    let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
    up_down_up::<Sqlite, _>(&mut conn, Source(&SQLITE), |c| {
        normalize(diesel::sql_query(SQLITE_SCHEMA).load(c).unwrap())
    });
}

#[test]
fn every_postgres_migration_goes_down_to_the_schema_before_it_and_up_again() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("updown_each");
    let mut conn = PgConnection::establish(&url).unwrap();
    up_down_up::<Pg, _>(&mut conn, Source(&POSTGRES), |c| {
        diesel::sql_query(PG_SCHEMA).load(c).unwrap()
    });
}
