//! What a database holds, read from the database itself: its tables, their columns and
//! primary keys, and which tables reference which. The copy is driven by this rather
//! than by `schema.rs`, so a table added by a later migration is copied without
//! anyone remembering to list it here (and a table diesel does not map, like
//! `data_upgrades`, is not forgotten).

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use diesel::sql_types::Text;

use super::CopyError;
use crate::store::DbConn;

/// Diesel's own bookkeeping: each database keeps the migrations of its own backend.
const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// A TIMESTAMP column: PostgreSQL's text form of one differs from what diesel
    /// writes into SQLite, so reading one from PostgreSQL formats it.
    pub timestamp: bool,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    /// The primary key's columns in key order (rows are read in this order).
    pub key: Vec<String>,
    /// The tables this one's foreign keys point to.
    pub references: BTreeSet<String>,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

/// `name` as a quoted SQL identifier (both backends quote with double quotes).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a quoted SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Every table of the database (diesel's migration bookkeeping and SQLite's internal
/// tables aside), by name.
pub fn tables(conn: &mut DbConn) -> Result<BTreeMap<String, Table>, CopyError> {
    match conn {
        DbConn::Sqlite(c) => sqlite_tables(c),
        DbConn::Pg(c) => pg_tables(c),
    }
}

fn sqlite_tables(c: &mut diesel::SqliteConnection) -> Result<BTreeMap<String, Table>, CopyError> {
    let mut out = BTreeMap::new();
    let names: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ?",
    )
    .bind::<Text, _>(MIGRATIONS_TABLE)
    .load(c)?;
    for Name { name } in names {
        let cols: Vec<SqliteColumn> = diesel::sql_query(
            "SELECT name, type AS kind, pk FROM pragma_table_info(?) ORDER BY cid",
        )
        .bind::<Text, _>(&name)
        .load(c)?;
        let mut key: Vec<(i32, String)> = cols
            .iter()
            .filter(|col| col.pk > 0)
            .map(|col| (col.pk, col.name.clone()))
            .collect();
        key.sort();
        let references: Vec<Name> =
            diesel::sql_query("SELECT DISTINCT \"table\" AS name FROM pragma_foreign_key_list(?)")
                .bind::<Text, _>(&name)
                .load(c)?;
        let table = Table {
            name: name.clone(),
            columns: cols
                .into_iter()
                .map(|col| Column {
                    timestamp: col.kind.to_ascii_lowercase().contains("timestamp"),
                    name: col.name,
                })
                .collect(),
            key: key.into_iter().map(|(_, n)| n).collect(),
            references: references.into_iter().map(|r| r.name).collect(),
        };
        out.insert(name, table);
    }
    Ok(out)
}

fn pg_tables(c: &mut diesel::PgConnection) -> Result<BTreeMap<String, Table>, CopyError> {
    let mut out = BTreeMap::new();
    let names: Vec<Name> = diesel::sql_query(
        "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> $1",
    )
    .bind::<Text, _>(MIGRATIONS_TABLE)
    .load(c)?;
    for Name { name } in names {
        let cols: Vec<PgColumn> = diesel::sql_query(
            "SELECT column_name::text AS name, data_type::text AS kind \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
        )
        .bind::<Text, _>(&name)
        .load(c)?;
        let key: Vec<Name> = diesel::sql_query(
            "SELECT kcu.column_name::text AS name \
                 FROM information_schema.table_constraints tc \
                 JOIN information_schema.key_column_usage kcu \
                   ON kcu.constraint_name = tc.constraint_name \
                  AND kcu.table_schema = tc.table_schema \
                  AND kcu.table_name = tc.table_name \
                 WHERE tc.constraint_type = 'PRIMARY KEY' \
                   AND tc.table_schema = current_schema() AND tc.table_name = $1 \
                 ORDER BY kcu.ordinal_position",
        )
        .bind::<Text, _>(&name)
        .load(c)?;
        let references: Vec<Name> = diesel::sql_query(
            "SELECT DISTINCT target.relname::text AS name FROM pg_constraint k \
                 JOIN pg_class source ON source.oid = k.conrelid \
                 JOIN pg_class target ON target.oid = k.confrelid \
                 JOIN pg_namespace n ON n.oid = source.relnamespace \
                 WHERE k.contype = 'f' AND n.nspname = current_schema() \
                   AND source.relname = $1",
        )
        .bind::<Text, _>(&name)
        .load(c)?;
        let table = Table {
            name: name.clone(),
            columns: cols
                .into_iter()
                .map(|col| Column {
                    timestamp: col.kind.starts_with("timestamp"),
                    name: col.name,
                })
                .collect(),
            key: key.into_iter().map(|k| k.name).collect(),
            references: references.into_iter().map(|r| r.name).collect(),
        };
        out.insert(name, table);
    }
    Ok(out)
}

/// How the two databases' tables differ, one line each; empty when they hold the same
/// tables with the same columns (types are each backend's own, so only names count).
pub fn differences(
    source: &BTreeMap<String, Table>,
    target: &BTreeMap<String, Table>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, table) in source {
        let Some(other) = target.get(name) else {
            out.push(format!("table {name} is in the source only"));
            continue;
        };
        let mine: BTreeSet<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let theirs: BTreeSet<&str> = other.columns.iter().map(|c| c.name.as_str()).collect();
        for c in mine.difference(&theirs) {
            out.push(format!("column {name}.{c} is in the source only"));
        }
        for c in theirs.difference(&mine) {
            out.push(format!("column {name}.{c} is in the target only"));
        }
    }
    for name in target.keys().filter(|n| !source.contains_key(*n)) {
        out.push(format!("table {name} is in the target only"));
    }
    out
}

/// The tables in an order in which every table comes after the tables it references
/// (so inserts never point at a row not copied yet); ties by name. A reference cycle
/// (none today) is broken by name order: SQLite defers its checks to the commit, and
/// PostgreSQL would name the row that fails.
pub fn insert_order(tables: &BTreeMap<String, Table>) -> Vec<String> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::with_capacity(tables.len());
    while order.len() < tables.len() {
        let ready: Vec<String> = tables
            .values()
            .filter(|t| !placed.contains(&t.name))
            .filter(|t| {
                t.references
                    .iter()
                    .all(|r| r == &t.name || placed.contains(r) || !tables.contains_key(r))
            })
            .map(|t| t.name.clone())
            .collect();
        let next = if ready.is_empty() {
            // A cycle: take the first remaining table by name.
            tables
                .keys()
                .find(|n| !placed.contains(*n))
                .cloned()
                .into_iter()
                .collect()
        } else {
            ready
        };
        for name in next {
            placed.insert(name.clone());
            order.push(name);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, refs: &[&str]) -> (String, Table) {
        (
            name.to_string(),
            Table {
                name: name.to_string(),
                columns: vec![Column {
                    name: "id".into(),
                    timestamp: false,
                }],
                key: vec!["id".into()],
                references: refs.iter().map(|r| r.to_string()).collect(),
            },
        )
    }

    #[test]
    fn referenced_tables_come_first() {
        let tables: BTreeMap<_, _> = [
            table("deliveries", &["subscriptions"]),
            table("agents", &["users"]),
            table("subscriptions", &["users"]),
            table("users", &[]),
            table("links", &["agents", "links"]),
        ]
        .into_iter()
        .collect();
        let order = insert_order(&tables);
        let at = |n: &str| order.iter().position(|o| o == n).unwrap();
        assert_eq!(order.len(), 5);
        assert!(at("users") < at("agents"));
        assert!(at("users") < at("subscriptions"));
        assert!(at("subscriptions") < at("deliveries"));
        assert!(
            at("agents") < at("links"),
            "a self-reference does not block"
        );
        let cycle: BTreeMap<_, _> = [table("a", &["b"]), table("b", &["a"])]
            .into_iter()
            .collect();
        assert_eq!(insert_order(&cycle), ["a", "b"]);
    }

    #[test]
    fn differences_name_the_missing_tables_and_columns() {
        let mut a: BTreeMap<_, _> = [table("users", &[]), table("extra", &[])]
            .into_iter()
            .collect();
        let b: BTreeMap<_, _> = [table("users", &[]), table("newer", &[])]
            .into_iter()
            .collect();
        if let Some(u) = a.get_mut("users") {
            u.columns.push(Column {
                name: "email".into(),
                timestamp: false,
            });
        }
        assert_eq!(
            differences(&a, &b),
            [
                "table extra is in the source only",
                "column users.email is in the source only",
                "table newer is in the target only"
            ]
        );
        assert!(differences(&b, &b).is_empty());
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
