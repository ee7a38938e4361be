//! One heartbeat of a node, as one run of statements on its connection, and the share
//! rule that spreads the work.
//!
//! The spread: every live node (a heartbeat within one lease) holds at most its share,
//! `ceil(resources / live nodes)`. A node over its share (another joined) gives the
//! excess up, and the others take free leases up to their share at their next round;
//! a node below it takes free or expired ones. Since the shares add up to at least
//! the number of resources, every resource finds a node, and since a node only gives
//! up what is above its share, the spread settles instead of moving back and forth.
//! When a node dies its heartbeat and leases age out together, the survivors' shares
//! grow, and they take its leases.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::NaiveDateTime;

use super::chrono_len;
use crate::store::nodes::{self, NodeRow};
use crate::store::{Conn, StoreError, claims, leases};

pub struct Plan {
    pub node: String,
    /// This process's token (see `instance`).
    pub instance: String,
    pub started_at: NaiveDateTime,
    pub lease: Duration,
    /// Other processes may share the database (PostgreSQL). On SQLite the one process
    /// takes its node's row whatever it holds (a crash left it behind).
    pub shared: bool,
}

impl Plan {
    /// This node's heartbeat at `now`.
    pub fn beat(&self, now: NaiveDateTime) -> nodes::Beat<'_> {
        let live_since = if self.shared {
            now - chrono_len(self.lease)
        } else {
            now + chrono::Duration::days(365)
        };
        nodes::Beat {
            id: &self.node,
            instance: &self.instance,
            version: super::VERSION,
            started_at: self.started_at,
            at: now,
            live_since,
        }
    }
}

pub struct Done {
    pub mine: HashSet<String>,
    pub live: usize,
    pub nodes: Vec<NodeRow>,
    pub claimed: i64,
}

/// A node's share of `total` resources among `live` nodes.
pub fn share(total: usize, live: usize) -> usize {
    total.div_ceil(live.max(1))
}

/// What [`join`] found.
pub enum Joined {
    /// This process runs as the node now.
    Yes,
    /// Another process holds the id, with this row.
    HeldBy(NodeRow),
    /// The row changed between two statements: ask again.
    Again,
}

/// Records `plan`'s process as node `plan.node` if no other live process runs as it, or
/// if the one in the row is known to have exited (see `instance`).
pub fn join(c: &mut Conn, plan: &Plan) -> Result<Joined, StoreError> {
    let beat = plan.beat(nodes::db_now(c)?);
    if nodes::heartbeat(c, &beat)? {
        return Ok(Joined::Yes);
    }
    let Some(row) = nodes::find(c, &plan.node)? else {
        return Ok(Joined::Again);
    };
    if super::instance::is_gone(&row.instance) {
        if !nodes::take_over(c, &row.instance, &beat)? {
            return Ok(Joined::Again);
        }
        tracing::info!(node_id = %plan.node, "the process that ran as this node id before has exited; taking its place");
        return Ok(Joined::Yes);
    }
    Ok(Joined::HeldBy(row))
}

/// Runs one round for `plan.node` over the resources that should run (`wanted`).
pub fn run(c: &mut Conn, plan: &Plan, wanted: &[String]) -> Result<Done, StoreError> {
    let now = nodes::db_now(c)?;
    let until = now + chrono_len(plan.lease);
    if !nodes::heartbeat(c, &plan.beat(now))? {
        let holder = nodes::find(c, &plan.node)?;
        return Err(StoreError::NodeIdInUse(super::taken_over(
            &plan.node,
            holder.as_ref(),
        )));
    }
    let all_nodes = nodes::list(c)?;
    let alive_since = now - chrono_len(plan.lease);
    let live = all_nodes
        .iter()
        .filter(|n| n.heartbeat_at >= alive_since)
        .count()
        .max(1);
    let wanted_set: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut mine: HashSet<String> = HashSet::new();
    for r in leases::renew_mine(c, &plan.node, until)? {
        if wanted_set.contains(r.as_str()) || leases::resource_exists(c, &r)? {
            // Wanted, or saved (and taken) after the caller read what is stored.
            mine.insert(r);
        } else {
            // Deleted since: nobody needs the lease.
            leases::release(c, &r, &plan.node)?;
        }
    }
    let cap = share(wanted.len(), live);
    if live > 1 && mine.len() > cap {
        let mut sorted: Vec<String> = mine.iter().cloned().collect();
        sorted.sort();
        for r in sorted.split_off(cap) {
            leases::release(c, &r, &plan.node)?;
            mine.remove(&r);
        }
    }
    if mine.len() < cap {
        let held: HashMap<String, NaiveDateTime> = leases::list(c)?
            .into_iter()
            .filter(|l| l.node_id != plan.node && l.expires_at >= now)
            .map(|l| (l.resource, l.expires_at))
            .collect();
        for r in wanted {
            if mine.len() >= cap {
                break;
            }
            if mine.contains(r) || held.contains_key(r) {
                continue;
            }
            if leases::acquire(c, r, &plan.node, now, until)? {
                mine.insert(r.clone());
            }
        }
    }
    let claimed = claims::count_claimed(c, &plan.node)?;
    // A node silent for a day is gone for good (a renamed host): off the list.
    nodes::remove_silent(c, now - chrono::Duration::days(1))?;
    Ok(Done {
        mine,
        live,
        nodes: all_nodes,
        claimed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_every_resource() {
        assert_eq!(share(0, 2), 0);
        assert_eq!(share(5, 1), 5);
        assert_eq!(share(5, 2), 3);
        assert_eq!(share(4, 2), 2);
        assert_eq!(share(3, 0), 3, "no live node counted: this one is");
    }

    fn plan(node: &str) -> Plan {
        Plan {
            node: node.into(),
            instance: format!("{node}-process"),
            started_at: crate::store::now(),
            lease: Duration::from_secs(15),
            shared: true,
        }
    }

    #[test]
    fn two_nodes_split_the_work_and_never_share_a_resource() {
        let (_dir, mut c) = crate::store::test_conn();
        let wanted: Vec<String> = (1..=5)
            .map(|n| leases::agent(crate::ids::AgentId(n)))
            .collect();
        let a = run(&mut c, &plan("a"), &wanted).unwrap();
        assert_eq!(a.mine.len(), 5, "alone, a takes everything");
        let b = run(&mut c, &plan("b"), &wanted).unwrap();
        assert!(b.mine.is_empty(), "nothing is free yet");
        let a = run(&mut c, &plan("a"), &wanted).unwrap();
        assert_eq!(a.mine.len(), 3, "b is alive: a keeps its share");
        let b = run(&mut c, &plan("b"), &wanted).unwrap();
        assert_eq!(b.mine.len(), 2);
        assert!(a.mine.is_disjoint(&b.mine));
        // Settled: another round changes nothing.
        assert_eq!(run(&mut c, &plan("a"), &wanted).unwrap().mine, a.mine);
        assert_eq!(run(&mut c, &plan("b"), &wanted).unwrap().mine, b.mine);
        // A deleted resource's lease is given up.
        let fewer = &wanted[..4];
        let a2 = run(&mut c, &plan("a"), fewer).unwrap();
        assert!(a2.mine.iter().all(|r| fewer.contains(r)));
    }

    #[test]
    fn a_process_whose_node_id_another_took_gets_no_lease() {
        let (_dir, mut c) = crate::store::test_conn();
        let wanted: Vec<String> = (1..=2)
            .map(|n| leases::agent(crate::ids::AgentId(n)))
            .collect();
        assert_eq!(run(&mut c, &plan("a"), &wanted).unwrap().mine.len(), 2);
        let mut twin = plan("a");
        twin.instance = "another process".into();
        let Err(e) = run(&mut c, &twin, &wanted) else {
            panic!("a second process ran a round as \"a\"");
        };
        assert!(
            matches!(&e, StoreError::NodeIdInUse(m) if m.contains("\"a\"")),
            "{e}"
        );
        // On SQLite there is one process: a row left by a crash is its own again.
        twin.shared = false;
        assert_eq!(run(&mut c, &twin, &wanted).unwrap().mine.len(), 2);
        assert!(
            run(&mut c, &plan("a"), &wanted).is_err(),
            "the first is out"
        );
    }
}
