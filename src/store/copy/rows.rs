//! Moving one table's rows: read from the source one row at a time, each row as a JSON
//! object made by the source database itself, and written to the target in batches of
//! at most [`BATCH_ROWS`] rows or about [`BATCH_BYTES`] bytes, each batch one statement
//! that the target database unpacks into typed columns.
//!
//! JSON is the one form both backends can both write and read for a row of any table,
//! so no table needs code of its own: SQLite's `json_object` and `json_each`,
//! PostgreSQL's `row_to_json` and `json_populate_recordset`. PostgreSQL converts each
//! value to its column's type (SQLite's 0/1 booleans and its timestamp text included);
//! SQLite takes what it is given, so PostgreSQL's timestamps are formatted the way
//! diesel writes them into SQLite (`YYYY-MM-DD HH:MM:SS.ffffff`, which sorts as text),
//! and SQLite's are cut to the microseconds PostgreSQL keeps.
//!
//! Memory: the source is read through a cursor (SQLite steps its statement,
//! PostgreSQL's row-by-row mode), so at most one batch and one row are held.

use diesel::connection::DefaultLoadingMode;
use diesel::pg::PgRowByRowLoadingMode;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::CopyError;
use super::catalog::{Table, ident, literal};
use crate::store::DbConn;

/// The most rows one insert statement carries.
pub const BATCH_ROWS: usize = 1000;
/// A batch is written once its JSON reaches this many bytes (a row larger than this
/// goes alone).
pub const BATCH_BYTES: usize = 4 << 20;

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    row: String,
}

fn order_by(table: &Table) -> String {
    if table.key.is_empty() {
        return String::new();
    }
    let key: Vec<String> = table.key.iter().map(|k| ident(k)).collect();
    format!(" ORDER BY {}", key.join(", "))
}

/// The statement that reads every row of `table` as one JSON object text per row.
fn select_sql(from_pg: bool, table: &Table) -> String {
    let name = ident(&table.name);
    if from_pg {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| {
                if c.timestamp {
                    format!(
                        "to_char({0}, 'YYYY-MM-DD HH24:MI:SS.US') AS {0}",
                        ident(&c.name)
                    )
                } else {
                    ident(&c.name)
                }
            })
            .collect();
        format!(
            "SELECT row_to_json(r)::text AS row FROM (SELECT {} FROM {name}{}) AS r",
            columns.join(", "),
            order_by(table)
        )
    } else {
        // diesel writes chrono's nanoseconds into SQLite; PostgreSQL keeps microseconds
        // and would round, which can change the millisecond the API shows: cut instead.
        let pairs: Vec<String> = table
            .columns
            .iter()
            .map(|c| {
                let value = if c.timestamp {
                    format!("substr({}, 1, 26)", ident(&c.name))
                } else {
                    ident(&c.name)
                };
                format!("{}, {value}", literal(&c.name))
            })
            .collect();
        format!(
            "SELECT json_object({}) AS row FROM {name}{}",
            pairs.join(", "),
            order_by(table)
        )
    }
}

/// The statement that inserts a JSON array of such objects into `table` (one
/// parameter, the array's text).
fn insert_sql(into_pg: bool, table: &Table) -> String {
    let name = ident(&table.name);
    let columns: Vec<String> = table.columns.iter().map(|c| ident(&c.name)).collect();
    let columns = columns.join(", ");
    if into_pg {
        // OVERRIDING SYSTEM VALUE: the ids are the source's, identity columns or not.
        format!(
            "INSERT INTO {name} ({columns}) OVERRIDING SYSTEM VALUE \
             SELECT {columns} FROM json_populate_recordset(NULL::{name}, $1::json)"
        )
    } else {
        let values: Vec<String> = table
            .columns
            .iter()
            .map(|c| {
                format!(
                    "json_extract(value, {})",
                    literal(&format!("$.{}", ident(&c.name)))
                )
            })
            .collect();
        format!(
            "INSERT INTO {name} ({columns}) SELECT {} FROM json_each(?)",
            values.join(", ")
        )
    }
}

/// Rows waiting to be written: a JSON array being built.
struct Batch<'a> {
    target: &'a mut DbConn,
    insert: String,
    text: String,
    rows: usize,
    copied: u64,
    table: &'a str,
}

impl Batch<'_> {
    fn push(&mut self, row: &str) -> Result<(), CopyError> {
        self.text.push(if self.rows == 0 { '[' } else { ',' });
        self.text.push_str(row);
        self.rows += 1;
        if self.rows >= BATCH_ROWS || self.text.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), CopyError> {
        if self.rows == 0 {
            return Ok(());
        }
        self.text.push(']');
        let written = diesel::sql_query(&self.insert)
            .bind::<Text, _>(&self.text)
            .execute(self.target)?;
        if written != self.rows {
            return Err(CopyError::Failed(format!(
                "table {}: {} rows were read but the target took {written}",
                self.table, self.rows
            )));
        }
        self.copied += self.rows as u64;
        self.rows = 0;
        self.text.clear();
        Ok(())
    }
}

/// Copies every row of `table` from `source` to `target` (whose table is empty) and
/// returns how many.
pub fn copy_table(
    source: &mut DbConn,
    target: &mut DbConn,
    table: &Table,
) -> Result<u64, CopyError> {
    let select = select_sql(source.is_pg(), table);
    let mut batch = Batch {
        insert: insert_sql(target.is_pg(), table),
        target,
        text: String::new(),
        rows: 0,
        copied: 0,
        table: &table.name,
    };
    match source {
        DbConn::Sqlite(c) => {
            let rows = diesel::sql_query(select).load_iter::<JsonRow, DefaultLoadingMode>(c)?;
            for row in rows {
                batch.push(&row?.row)?;
            }
        }
        DbConn::Pg(c) => {
            let rows = diesel::sql_query(select).load_iter::<JsonRow, PgRowByRowLoadingMode>(c)?;
            for row in rows {
                batch.push(&row?.row)?;
            }
        }
    }
    batch.flush()?;
    Ok(batch.copied)
}

#[cfg(test)]
mod tests {
    use super::super::catalog::Column;
    use super::*;

    fn table() -> Table {
        Table {
            name: "t".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    timestamp: false,
                },
                Column {
                    name: "at".into(),
                    timestamp: true,
                },
            ],
            key: vec!["id".into()],
            references: Default::default(),
        }
    }

    #[test]
    fn the_statements_name_every_column() {
        let t = table();
        assert_eq!(
            select_sql(false, &t),
            "SELECT json_object('id', \"id\", 'at', substr(\"at\", 1, 26)) AS row FROM \"t\" \
             ORDER BY \"id\""
        );
        assert_eq!(
            select_sql(true, &t),
            "SELECT row_to_json(r)::text AS row FROM (SELECT \"id\", \
             to_char(\"at\", 'YYYY-MM-DD HH24:MI:SS.US') AS \"at\" FROM \"t\" ORDER BY \"id\") AS r"
        );
        assert_eq!(
            insert_sql(false, &t),
            "INSERT INTO \"t\" (\"id\", \"at\") SELECT json_extract(value, '$.\"id\"'), \
             json_extract(value, '$.\"at\"') FROM json_each(?)"
        );
        assert!(insert_sql(true, &t).contains("json_populate_recordset(NULL::\"t\", $1::json)"));
    }
}
