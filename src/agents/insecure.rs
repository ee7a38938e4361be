//! The agent types that run a user's own code on the host (shell_command, java_script): Huginn's
//! "insecure agents". They are off unless the operator turns them on (`[insecure_agents]
//! enabled = true`, Huginn's `ENABLE_INSECURE_AGENTS`), because a command runs with the
//! hub's own rights: anyone who may create agents could read its database and keys.
//!
//! While they are off: a save is refused (422), a scenario import creates them disabled
//! with a problem, an agent stored while they were on is disabled at start with a log
//! line, and the behaviour itself refuses to run (the last line of defence: it gets no
//! [`Limits`]). While they are on, every run is bounded by [`Limits`].

use std::time::Duration;

use super::{Kind, KindInfo};
use crate::config::InsecureAgentsConfig;

/// The insecure types.
const INSECURE: &[Kind] = &[Kind::ShellCommand, Kind::JavaScript];

/// Whether agents of `kind` run the user's code on the host.
pub fn is_insecure(kind: &KindInfo) -> bool {
    INSECURE.contains(&kind.kind)
}

/// What one run of an insecure agent may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time; then the run is killed with every process it started.
    pub timeout: Duration,
    /// Bytes of standard output, and separately of standard error.
    pub max_output_bytes: usize,
    /// Address space of each process of the run (RLIMIT_AS).
    pub memory_bytes: u64,
}

impl Limits {
    /// The limits when the operator enabled insecure agents; None when they are off.
    pub fn from_config(c: &InsecureAgentsConfig) -> Option<Limits> {
        c.enabled.then(|| Limits {
            timeout: Duration::from_secs(c.timeout_seconds.max(1)),
            max_output_bytes: c.max_output_bytes.max(1),
            memory_bytes: c.memory_mb.max(16).saturating_mul(1024 * 1024),
        })
    }
}

/// Why an agent of type `name` may not be saved or run here, and how to change that.
pub fn not_enabled(name: &str) -> String {
    format!(
        "{name} agents run commands on this host and are not enabled: the operator enables them \
         with `[insecure_agents] enabled = true` in the config (or MUNINN_INSECURE_AGENTS_ENABLED=true) \
         and restarts muninn; only do so if every user of this hub is trusted"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_bounded_when_on() {
        assert_eq!(Limits::from_config(&InsecureAgentsConfig::default()), None);
        let on = InsecureAgentsConfig {
            enabled: true,
            timeout_seconds: 0,
            max_output_bytes: 10,
            memory_mb: 64,
        };
        let l = Limits::from_config(&on).unwrap();
        assert_eq!(
            l.timeout,
            Duration::from_secs(1),
            "a zero timeout is one second"
        );
        assert_eq!(l.memory_bytes, 64 << 20);
        assert!(is_insecure(
            crate::agents::kind("Agents::ShellCommandAgent").unwrap()
        ));
        assert!(!is_insecure(crate::agents::kind("jq").unwrap()));
    }
}
