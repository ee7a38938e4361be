//! `leases`: one resource ("agent:12", "subscription:3") held by one node until its
//! lease expires, and `schedule_ticks`: the last schedule tick fired per agent.
//!
//! A lease is taken and renewed by one conditional upsert, so two nodes racing for a
//! resource cannot both win: the row is inserted when free, or overwritten only when
//! it has expired or is already the caller's. On SQLite there is one node, which always
//! wins.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::nodes::placeholders;
use super::schema::leases;
use super::{Conn, StoreError};
use crate::ids::AgentId;

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = leases)]
pub struct LeaseRow {
    pub resource: String,
    pub node_id: String,
    pub expires_at: NaiveDateTime,
}

/// The resource name of an agent's lease.
pub fn agent(id: AgentId) -> String {
    format!("agent:{id}")
}

/// The resource name of a subscription's (outgoing webhook's) lease.
pub fn subscription(id: crate::ids::SubscriptionId) -> String {
    format!("subscription:{id}")
}

/// Whether the agent or subscription a resource names is still stored (a lease taken
/// for one saved after a round read the stored ids is kept, not given up).
pub fn resource_exists(conn: &mut Conn, resource: &str) -> Result<bool, StoreError> {
    use super::schema::{agents, subscriptions};
    let id = |prefix: &str| {
        resource
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<i64>().ok())
    };
    if let Some(id) = id("agent:") {
        let n: i64 = agents::table.find(id).count().get_result(conn)?;
        return Ok(n > 0);
    }
    if let Some(id) = id("subscription:") {
        let n: i64 = subscriptions::table.find(id).count().get_result(conn)?;
        return Ok(n > 0);
    }
    Ok(false)
}

/// Takes `resource` for `node` until `until`, if it is free, expired at `now`, or
/// already `node`'s (then it is renewed). True when `node` holds it now.
pub fn acquire(
    conn: &mut Conn,
    resource: &str,
    node: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<bool, StoreError> {
    let sql = placeholders(
        conn,
        "INSERT INTO leases (resource, node_id, expires_at) VALUES (?, ?, ?) \
         ON CONFLICT (resource) DO UPDATE SET node_id = excluded.node_id, \
         expires_at = excluded.expires_at \
         WHERE leases.node_id = excluded.node_id OR leases.expires_at < ?",
    );
    let n = diesel::sql_query(sql)
        .bind::<Text, _>(resource)
        .bind::<Text, _>(node)
        .bind::<Timestamp, _>(until)
        .bind::<Timestamp, _>(now)
        .execute(conn)?;
    Ok(n == 1)
}

/// Renews every lease `node` holds until `until`; returns their resources. A lease
/// another node took over is no longer `node`'s and is not renewed.
pub fn renew_mine(
    conn: &mut Conn,
    node: &str,
    until: NaiveDateTime,
) -> Result<Vec<String>, StoreError> {
    diesel::update(leases::table.filter(leases::node_id.eq(node)))
        .set(leases::expires_at.eq(until))
        .execute(conn)?;
    Ok(leases::table
        .filter(leases::node_id.eq(node))
        .select(leases::resource)
        .load(conn)?)
}

/// Gives `resource` up, if `node` holds it.
pub fn release(conn: &mut Conn, resource: &str, node: &str) -> Result<(), StoreError> {
    diesel::delete(
        leases::table
            .filter(leases::resource.eq(resource))
            .filter(leases::node_id.eq(node)),
    )
    .execute(conn)?;
    Ok(())
}

/// Gives up every lease `node` holds (it stops cleanly: the others need not wait).
pub fn release_all(conn: &mut Conn, node: &str) -> Result<usize, StoreError> {
    Ok(diesel::delete(leases::table.filter(leases::node_id.eq(node))).execute(conn)?)
}

/// Every lease, by resource.
pub fn list(conn: &mut Conn) -> Result<Vec<LeaseRow>, StoreError> {
    Ok(leases::table
        .select(LeaseRow::as_select())
        .order(leases::resource.asc())
        .load(conn)?)
}

/// Records that agent `agent_id`'s schedule fired its tick `tick`, unless a tick at or
/// after it was already fired (by this node or another before a failover). With
/// `holder`, only while that node holds the agent's lease at `now`. True: fire it.
pub fn fire_tick(
    conn: &mut Conn,
    agent_id: AgentId,
    tick: NaiveDateTime,
    holder: Option<(&str, NaiveDateTime)>,
) -> Result<bool, StoreError> {
    const UPSERT: &str = " ON CONFLICT (agent_id) DO UPDATE SET fired_at = excluded.fired_at \
                           WHERE schedule_ticks.fired_at < excluded.fired_at";
    let n = match holder {
        Some((node, now)) => {
            let sql = placeholders(
                conn,
                &format!(
                    "INSERT INTO schedule_ticks (agent_id, fired_at) SELECT ?, ? WHERE EXISTS \
                     (SELECT 1 FROM leases WHERE resource = ? AND node_id = ? AND expires_at >= ?){UPSERT}"
                ),
            );
            diesel::sql_query(sql)
                .bind::<BigInt, _>(agent_id)
                .bind::<Timestamp, _>(tick)
                .bind::<Text, _>(agent(agent_id))
                .bind::<Text, _>(node)
                .bind::<Timestamp, _>(now)
                .execute(conn)?
        }
        None => {
            let sql = placeholders(
                conn,
                &format!("INSERT INTO schedule_ticks (agent_id, fired_at) VALUES (?, ?){UPSERT}"),
            );
            diesel::sql_query(sql)
                .bind::<BigInt, _>(agent_id)
                .bind::<Timestamp, _>(tick)
                .execute(conn)?
        }
    };
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_lease_goes_to_one_node_until_it_expires() {
        let (_dir, mut c) = crate::store::test_conn();
        let t = crate::store::now();
        let until = t + Duration::seconds(15);
        assert!(acquire(&mut c, "agent:1", "a", t, until).unwrap());
        assert!(
            !acquire(&mut c, "agent:1", "b", t, until).unwrap(),
            "a holds it"
        );
        assert!(
            acquire(&mut c, "agent:1", "a", t, until).unwrap(),
            "a renews"
        );
        let later = until + Duration::seconds(1);
        assert!(
            acquire(&mut c, "agent:1", "b", later, later + Duration::seconds(15)).unwrap(),
            "expired: b takes it"
        );
        assert!(renew_mine(&mut c, "a", later).unwrap().is_empty());
        assert_eq!(renew_mine(&mut c, "b", later).unwrap(), ["agent:1"]);
        release(&mut c, "agent:1", "a").unwrap();
        assert_eq!(
            list(&mut c).unwrap()[0].node_id,
            "b",
            "only the holder releases"
        );
        assert_eq!(release_all(&mut c, "b").unwrap(), 1);
        assert!(list(&mut c).unwrap().is_empty());
    }

    #[test]
    fn a_tick_fires_once_and_never_goes_back() {
        let (_dir, mut c) = crate::store::test_conn();
        let agent = crate::store::test_webhook_agent(&mut c).unwrap().id;
        let t = crate::store::now();
        assert!(fire_tick(&mut c, agent, t, None).unwrap());
        assert!(!fire_tick(&mut c, agent, t, None).unwrap(), "the same tick");
        assert!(!fire_tick(&mut c, agent, t - Duration::seconds(10), None).unwrap());
        let next = t + Duration::seconds(10);
        assert!(
            !fire_tick(&mut c, agent, next, Some(("a", t))).unwrap(),
            "a holds no lease"
        );
        acquire(&mut c, &super::agent(agent), "a", t, next).unwrap();
        assert!(fire_tick(&mut c, agent, next, Some(("a", t))).unwrap());
        assert!(!fire_tick(&mut c, agent, next, Some(("a", t))).unwrap());
    }
}
