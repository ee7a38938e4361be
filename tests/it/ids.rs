//! The id types of `muninn::ids` on PostgreSQL: each binds as a `BIGINT` and reads back
//! as the number it was, through the raw connection and through the multi-connection
//! the store uses (SQLite: the unit tests in src/store/ids_tests.rs). Skipped where
//! PostgreSQL is not installed, as every PostgreSQL test is (tests/it/common/postgres.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::postgres::PgCluster;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use muninn::ids::*;
use muninn::store::DbConn;
use muninn::store::postgres::establish_pg;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Binds `$ty($n)` on `$conn` and reads it back as `$ty` and as the plain number.
macro_rules! round_trip {
    ($conn:expr, $ty:ident, $n:expr) => {{
        let (id, n): ($ty, i64) = ($ty($n), $n);
        let back: $ty = diesel::select(id.into_sql::<BigInt>())
            .get_result($conn)
            .unwrap();
        assert_eq!(back, id);
        let row: Row = diesel::sql_query("SELECT $1 AS id")
            .bind::<BigInt, _>(id)
            .get_result($conn)
            .unwrap();
        assert_eq!(row.id, n);
    }};
}

#[test]
fn every_id_reads_back_from_postgres_as_its_number() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("ids");
    let mut raw = establish_pg(&url).unwrap();
    let mut multi = DbConn::Pg(establish_pg(&url).unwrap());
    for n in [1, 42, i64::MAX] {
        round_trip!(&mut raw, SubscriptionId, n);
        round_trip!(&mut multi, SubscriptionId, n);
        round_trip!(&mut raw, DeliveryId, n);
        round_trip!(&mut multi, DeliveryId, n);
        round_trip!(&mut raw, AgentId, n);
        round_trip!(&mut multi, AgentId, n);
        round_trip!(&mut raw, EventId, n);
        round_trip!(&mut multi, EventId, n);
        round_trip!(&mut raw, IncomingWebhookId, n);
        round_trip!(&mut multi, IncomingWebhookId, n);
        round_trip!(&mut raw, ScenarioId, n);
        round_trip!(&mut multi, ScenarioId, n);
        round_trip!(&mut raw, LinkId, n);
        round_trip!(&mut multi, LinkId, n);
    }
}
