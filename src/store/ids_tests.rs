//! Each id type of `crate::ids` reads back from SQLite as the number it was bound as:
//! through the raw connection and through the multi-connection the store uses.
//! PostgreSQL: tests/it/ids.rs (it needs a throwaway cluster).

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;

use super::backend::DbConn;
use crate::ids::*;

#[derive(QueryableByName, Debug)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Binds `$id` (of type `$ty`) and reads it back as `$ty` and as the plain number.
macro_rules! round_trip {
    ($ty:ident, $n:expr) => {{
        let (id, n): ($ty, i64) = ($ty($n), $n);
        let mut sqlite = SqliteConnection::establish(":memory:").unwrap();
        let back: $ty = diesel::select(id.into_sql::<BigInt>())
            .get_result(&mut sqlite)
            .unwrap();
        assert_eq!(back, id);
        let row: Row = diesel::sql_query("SELECT ? AS id")
            .bind::<BigInt, _>(id)
            .get_result(&mut sqlite)
            .unwrap();
        assert_eq!(row.id, n);

        let mut multi = DbConn::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        let back: $ty = diesel::select(id.into_sql::<BigInt>())
            .get_result(&mut multi)
            .unwrap();
        assert_eq!(back, id);
        let row: Row = diesel::sql_query("SELECT ? AS id")
            .bind::<BigInt, _>(id)
            .get_result(&mut multi)
            .unwrap();
        assert_eq!(row.id, n);
    }};
}

#[test]
fn every_id_reads_back_from_sqlite_as_its_number() {
    for n in [1, 42, i64::MAX] {
        round_trip!(SubscriptionId, n);
        round_trip!(DeliveryId, n);
        round_trip!(AgentId, n);
        round_trip!(EventId, n);
        round_trip!(IncomingWebhookId, n);
        round_trip!(ScenarioId, n);
        round_trip!(LinkId, n);
    }
}
