//! Every migration runs up, down and up again: after reverting all of them the database
//! is empty again, and the schema after the second run is the one the first run made.
//! A `down.sql` that forgets a table, an index or a trigger fails here.

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel_migrations::MigrationHarness;

use super::connection::MIGRATIONS;

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct SchemaObject {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    sql: Option<String>,
}

/// Every table, index, view and trigger with its SQL, diesel's bookkeeping aside.
fn schema(conn: &mut SqliteConnection) -> Vec<SchemaObject> {
    diesel::sql_query(
        "SELECT type AS kind, name, sql FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite_%' AND name != '__diesel_schema_migrations' \
         ORDER BY type, name",
    )
    .load(conn)
    .unwrap()
}

#[test]
fn every_migration_goes_up_down_and_up_again_to_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migrations.db");
    let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();

    let applied = conn.run_pending_migrations(MIGRATIONS).unwrap().len();
    let first = schema(&mut conn);
    assert!(applied > 0 && !first.is_empty());

    let reverted = conn.revert_all_migrations(MIGRATIONS).unwrap().len();
    assert_eq!(
        reverted, applied,
        "every migration has a down.sql that runs"
    );
    let left = schema(&mut conn);
    assert!(
        left.is_empty(),
        "down.sql left these behind: {:?}",
        left.iter().map(|o| (&o.kind, &o.name)).collect::<Vec<_>>()
    );

    conn.run_pending_migrations(MIGRATIONS).unwrap();
    let second = schema(&mut conn);
    assert_eq!(
        first.len(),
        second.len(),
        "objects after up/down/up differ in number"
    );
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a, b, "{} {} differs after up/down/up", a.kind, a.name);
    }
}
