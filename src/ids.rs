//! The ids of the tables, one type each, so an agent's id cannot be passed where a
//! subscription's is wanted. Each is the row's `BIGINT` id and nothing more: stored
//! through diesel as `BigInt` on every backend (SQLite, PostgreSQL and the
//! multi-connection that hands a value to either), written in JSON and in text as the
//! bare number, and read from a path segment as the number (so `web::Path<AgentId>`
//! refuses `abc` with the same message `web::Path<i64>` did).
//!
//! Where a plain number is the right thing (cursors, counts, SQL arithmetic) the code
//! keeps `i64` and converts at the edge with `.0` or `From`.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;

/// Declares one id type per name. The diesel impls are generic over the backend and
/// delegate to `i64`'s, which every backend (the multi-backend included: its derive
/// implements `i64` for `BigInt`) already has, so one impl serves all three.
macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = BigInt)]
        pub struct $name(pub i64);

        impl<DB> FromSql<BigInt, DB> for $name
        where
            DB: Backend,
            i64: FromSql<BigInt, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                i64::from_sql(bytes).map($name)
            }
        }

        impl<DB> ToSql<BigInt, DB> for $name
        where
            DB: Backend,
            i64: ToSql<BigInt, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> $name {
                $name(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    )*};
}

ids! {
    /// `subscriptions.id`: an outgoing webhook.
    SubscriptionId;
    /// `deliveries.id`: one event owed to one subscription.
    DeliveryId;
    /// `agents.id`: an agent (also `events.agent_id`, the links' ends, ...).
    AgentId;
    /// `events.id`: an event (also `deliveries.event_id`, the logs' event ids, ...).
    EventId;
    /// `incoming_webhooks.id`: a `/webhook/{token}` endpoint.
    IncomingWebhookId;
    /// `scenarios.id`: a scenario (a named set of agents).
    ScenarioId;
    /// `links.id`: one link from a source agent to a receiver.
    LinkId;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bare number in JSON and in text, both ways; anything else is refused. (The
    /// database round trip: `store/ids_tests.rs`, tests/it/ids.rs for PostgreSQL.)
    fn as_number<T>(id: T, n: i64)
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
        T: serde::Serialize + serde::de::DeserializeOwned + Into<i64> + From<i64>,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
    {
        assert_eq!(serde_json::to_string(&id).unwrap(), n.to_string());
        assert_eq!(serde_json::from_str::<T>(&n.to_string()).unwrap(), id);
        assert!(serde_json::from_str::<T>("\"7\"").is_err());
        assert_eq!(id.to_string(), n.to_string());
        assert_eq!(n.to_string().parse::<T>().unwrap(), id);
        assert!("7x".parse::<T>().is_err());
        assert_eq!(id.into(), n);
        assert_eq!(T::from(n), id);
    }

    #[test]
    fn every_id_is_its_number_in_json_and_text() {
        for n in [1, 42, i64::MAX] {
            as_number(SubscriptionId(n), n);
            as_number(DeliveryId(n), n);
            as_number(AgentId(n), n);
            as_number(EventId(n), n);
            as_number(IncomingWebhookId(n), n);
            as_number(ScenarioId(n), n);
            as_number(LinkId(n), n);
        }
    }
}
