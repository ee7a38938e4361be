//! `[cluster]`: who this node is and how long its claims last, for several nodes on
//! one PostgreSQL database (see `cluster/`). On SQLite there is one node and these
//! only name it.

use serde::{Deserialize, Serialize};

use super::{ConfigError, shown};

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
            check_node_id(configured)?;
            return Ok(configured.to_string());
        }
        let host = host_name().ok_or_else(|| ConfigError::Value {
            key: "cluster.node_id",
            value: String::new(),
            reason: "the host name cannot be read; set a node id that is unique among the \
                     nodes sharing the database"
                .into(),
        })?;
        // `$HOSTNAME` is anyone's text; the kernel's name passes.
        check_node_id(&host)?;
        Ok(host)
    }

    /// Checks the settings: a lease outlives at least two heartbeats, so one late
    /// renewal does not hand a live node's work to another; a lease is at most
    /// [`MAX_LEASE_SECONDS`]; a node id that is set is one [`check_node_id`] accepts.
    pub fn check(&self) -> Result<(), ConfigError> {
        // Past this, a lease's expiry overflows the clock (a panic in the lease round,
        // inside the writer) long before it means anything: a day is already a day
        // without failover.
        if self.lease_seconds > MAX_LEASE_SECONDS {
            return Err(ConfigError::Value {
                key: "cluster.lease_seconds",
                value: self.lease_seconds.to_string(),
                reason: format!(
                    "it must be at most {MAX_LEASE_SECONDS} (one day): a dead node's work \
                     waits this long before another node takes it"
                ),
            });
        }
        if self.heartbeat_seconds == 0
            || self.lease_seconds < self.heartbeat_seconds.saturating_mul(2)
        {
            return Err(ConfigError::Value {
                key: "cluster.lease_seconds",
                value: self.lease_seconds.to_string(),
                reason: format!(
                    "it must be at least twice heartbeat_seconds ({}), which must be at least 1",
                    self.heartbeat_seconds
                ),
            });
        }
        let configured = self.node_id.trim();
        if !configured.is_empty() {
            check_node_id(configured)?;
        }
        Ok(())
    }
}

/// The longest lease, in seconds (one day).
pub const MAX_LEASE_SECONDS: u64 = 86_400;
/// The longest node id, in bytes: a host name is at most 253.
pub const MAX_NODE_ID_BYTES: usize = 255;

/// A node id names the node in the `nodes` and `leases` tables, in log lines, in
/// `/worker_status` and on the console: printable text of at most
/// [`MAX_NODE_ID_BYTES`] bytes, so it can be neither a terminal escape sequence nor a
/// forged log line, nor make every heartbeat and lease row carry kilobytes.
pub fn check_node_id(id: &str) -> Result<(), ConfigError> {
    let refuse = |reason: &str| ConfigError::Value {
        key: "cluster.node_id",
        value: shown(id),
        reason: reason.into(),
    };
    if id.len() > MAX_NODE_ID_BYTES {
        return Err(refuse(&format!(
            "it is {} bytes long; a node id is at most {MAX_NODE_ID_BYTES} (a host name \
             is at most 253)",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(refuse(
            "it holds control characters (a newline, a tab, an escape); use letters, \
             digits, dots and dashes, as in a host name",
        ));
    }
    Ok(())
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
        // No overflow of 2 * heartbeat, no lease past the clock's range.
        c.heartbeat_seconds = u64::MAX;
        assert!(c.check().unwrap_err().to_string().contains("twice"));
        c.heartbeat_seconds = 5;
        c.lease_seconds = 10_000_000_000_000;
        assert!(c.check().unwrap_err().to_string().contains("at most 86400"));
        c.lease_seconds = MAX_LEASE_SECONDS;
        assert!(c.check().is_ok());
    }

    #[test]
    fn a_node_id_is_short_printable_text() {
        let mut c = ClusterConfig::default();
        for bad in [
            "node\na",
            "node\u{1b}[31m",
            "tab\there",
            &"n".repeat(10 * 1024),
        ] {
            c.node_id = bad.to_string();
            let err = c.check().unwrap_err().to_string();
            assert!(err.contains("cluster.node_id"), "{err}");
            assert!(err.len() < 400, "the message shows the start of it: {err}");
            assert!(!err.contains('\n') && !err.contains('\u{1b}'), "{err}");
            assert!(c.resolved_node_id().is_err());
        }
        c.node_id = "node-\u{e9}.example.org".into();
        assert!(c.check().is_ok());
    }
}
