//! What every node holds, counted in the database: the agents and webhooks whose leases
//! are in its name and the deliveries it has claimed and not settled. Read fresh for the
//! admins' cluster view (`/worker_status`), with the database's clock, so a node that
//! stopped beating shows its heartbeat's true age and what it still holds (what the
//! live nodes take over once its leases and claims expire).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::deliveries::{PENDING, RETRYING};
use super::nodes::{self, NodeRow};
use super::schema::deliveries as d;
use super::{Conn, StoreError};

/// One node with what it holds.
#[derive(Debug, Clone)]
pub struct NodeLoad {
    pub node: NodeRow,
    /// Leases on agents ("agent:ID") in its name.
    pub agents: i64,
    /// Leases on outgoing webhooks ("subscription:ID") in its name.
    pub subscriptions: i64,
    /// Pending or retrying deliveries it has claimed.
    pub claimed: i64,
}

/// Every node, by id, as of `now` (the database's clock).
#[derive(Debug, Clone)]
pub struct ClusterLoad {
    pub now: NaiveDateTime,
    pub nodes: Vec<NodeLoad>,
}

/// Counts each node's leases by kind and its claimed deliveries, grouped in the
/// database (the claims through the partial index on `claimed_by`), so an admin's
/// console polling every second reads a row per node, not one per agent.
pub fn load(conn: &mut Conn) -> Result<ClusterLoad, StoreError> {
    let now = nodes::db_now(conn)?;
    let rows = nodes::list(conn)?;
    #[derive(QueryableByName)]
    struct Held {
        #[diesel(sql_type = Text)]
        node_id: String,
        #[diesel(sql_type = BigInt)]
        agents: i64,
        #[diesel(sql_type = BigInt)]
        subscriptions: i64,
    }
    let held: HashMap<String, (i64, i64)> = diesel::sql_query(
        "SELECT node_id, \
         COUNT(CASE WHEN resource LIKE 'agent:%' THEN 1 END) AS agents, \
         COUNT(CASE WHEN resource LIKE 'subscription:%' THEN 1 END) AS subscriptions \
         FROM leases GROUP BY node_id",
    )
    .load::<Held>(conn)?
    .into_iter()
    .map(|h| (h.node_id, (h.agents, h.subscriptions)))
    .collect();
    let claimed: HashMap<String, i64> = d::table
        .filter(d::claimed_by.is_not_null())
        .filter(d::status.eq_any([PENDING, RETRYING]))
        .group_by(d::claimed_by)
        .select((d::claimed_by, count_star()))
        .load::<(Option<String>, i64)>(conn)?
        .into_iter()
        .filter_map(|(node, n)| Some((node?, n)))
        .collect();
    let nodes = rows
        .into_iter()
        .map(|node| {
            let (agents, subscriptions) = held.get(&node.id).copied().unwrap_or_default();
            let claimed = claimed.get(&node.id).copied().unwrap_or_default();
            NodeLoad {
                node,
                agents,
                subscriptions,
                claimed,
            }
        })
        .collect();
    Ok(ClusterLoad { now, nodes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::leases;

    #[test]
    fn each_node_counts_its_own_leases_by_kind() {
        let (_dir, mut c) = crate::store::test_conn();
        let t = nodes::db_now(&mut c).unwrap();
        let until = t + chrono::Duration::seconds(15);
        let beat = nodes::Beat {
            id: "a",
            instance: "a-instance",
            version: "1",
            started_at: t,
            at: t,
            live_since: t - chrono::Duration::seconds(15),
        };
        assert!(nodes::heartbeat(&mut c, &beat).unwrap());
        let beat = nodes::Beat {
            id: "b",
            instance: "b-instance",
            version: "1",
            started_at: t,
            at: t,
            live_since: t - chrono::Duration::seconds(15),
        };
        assert!(nodes::heartbeat(&mut c, &beat).unwrap());
        for r in [
            leases::agent(crate::ids::AgentId(1)),
            leases::agent(crate::ids::AgentId(2)),
            leases::subscription(crate::ids::SubscriptionId(1)),
        ] {
            assert!(leases::acquire(&mut c, &r, "a", t, until).unwrap());
        }
        assert!(
            leases::acquire(
                &mut c,
                &leases::agent(crate::ids::AgentId(3)),
                "b",
                t,
                until
            )
            .unwrap()
        );
        let load = load(&mut c).unwrap();
        let counts: Vec<(&str, i64, i64, i64)> = load
            .nodes
            .iter()
            .map(|n| (n.node.id.as_str(), n.agents, n.subscriptions, n.claimed))
            .collect();
        assert_eq!(counts, [("a", 2, 1, 0), ("b", 1, 0, 0)]);
    }
}
