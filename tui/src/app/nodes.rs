//! The node the console talks to and its cluster, as the UI asks about them: whether
//! the hub runs as several nodes at all (one node stays out of the way), and how many
//! nodes are late or gone.

use crate::api::{ClusterNode, NodeState};
use crate::app::App;

/// The nodes by their heartbeat: (live, late, expired); unknown states count as live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounts {
    pub live: usize,
    pub late: usize,
    pub expired: usize,
}

impl NodeCounts {
    pub fn of(nodes: &[ClusterNode]) -> NodeCounts {
        let mut c = NodeCounts::default();
        for n in nodes {
            match n.state.unwrap_or_default() {
                NodeState::Late => c.late += 1,
                NodeState::Expired => c.expired += 1,
                NodeState::Live | NodeState::Unknown => c.live += 1,
            }
        }
        c
    }
}

impl App {
    /// True when more than one node shares the hub's database (as the admin's list
    /// shows it, or the live count for anyone else). A one-box hub answers false and
    /// the console shows only its node's name.
    pub fn is_cluster(&self) -> bool {
        self.node
            .as_ref()
            .is_some_and(|n| n.live_nodes > 1 || n.nodes.len() > 1)
    }
}
