//! `[cluster]`: who this node is and how long its claims last, for several nodes on
//! one PostgreSQL database (see `cluster/`). On SQLite there is one node and these
//! only name it.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name in the `nodes` and `leases` tables. Empty: the host name, so a
    /// node restarted on the same machine finds its own leases again.
    pub node_id: String,
    /// How long a lease (an agent, a subscription) or a delivery claim holds without a
    /// renewal: a dead node's work moves to a live node after at most this plus one
    /// heartbeat.
    pub lease_seconds: u64,
    /// How often a node renews its leases and records that it is alive.
    pub heartbeat_seconds: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: String::new(),
            lease_seconds: 15,
            heartbeat_seconds: 5,
        }
    }
}

impl ClusterConfig {
    /// The node id: `node_id`, else the host name. An error when neither is known.
    pub fn resolved_node_id(&self) -> Result<String, ConfigError> {
        let configured = self.node_id.trim();
        if !configured.is_empty() {
            return Ok(configured.to_string());
        }
        host_name().ok_or_else(|| ConfigError::Value {
            key: "cluster.node_id",
            value: String::new(),
            reason: "the host name cannot be read; set a node id that is unique among the \
                     nodes sharing the database"
                .into(),
        })
    }

    /// Checks that a lease outlives at least two heartbeats, so one late renewal does
    /// not hand a live node's work to another.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.heartbeat_seconds == 0 || self.lease_seconds < 2 * self.heartbeat_seconds {
            return Err(ConfigError::Value {
                key: "cluster.lease_seconds",
                value: self.lease_seconds.to_string(),
                reason: format!(
                    "it must be at least twice heartbeat_seconds ({}), which must be at least 1",
                    self.heartbeat_seconds
                ),
            });
        }
        Ok(())
    }
}

/// The kernel's host name (Linux), else `$HOSTNAME`.
fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_named_by_its_config_or_its_host() {
        let mut c = ClusterConfig::default();
        assert!(!c.resolved_node_id().unwrap().is_empty());
        c.node_id = " node-a ".into();
        assert_eq!(c.resolved_node_id().unwrap(), "node-a");
    }

    #[test]
    fn a_lease_must_outlive_two_heartbeats() {
        let mut c = ClusterConfig::default();
        assert!(c.check().is_ok());
        c.lease_seconds = 9;
        assert!(c.check().unwrap_err().to_string().contains("heartbeat"));
        c.heartbeat_seconds = 0;
        assert!(c.check().is_err());
    }
}
