//! Which process runs as a node id. Two processes started with one `[cluster] node_id`
//! would share its leases without either noticing, so each process draws a random
//! instance token at start and its heartbeat records it: a second process finds the
//! first one's token, beating, and refuses to start.
//!
//! The token also says where the process runs (the machine's boot id, its PID
//! namespace and its PID), so a node restarted on the same machine after a crash sees
//! at once that the process in the row is gone instead of waiting out its lease.

use std::path::Path;

/// This process's token: `<boot id>/<pid namespace>/<pid>/<random>`. The first two are
/// empty where the system does not say (not Linux): such a token is never known gone.
pub fn new_token() -> String {
    format!(
        "{}/{}/{}/{:016x}",
        boot_id(),
        pid_namespace(),
        std::process::id(),
        rand::random::<u64>()
    )
}

/// True only when `token` is surely a process of this machine and PID namespace that
/// no longer runs. A PID reused by another process counts as running (the caller then
/// waits for the heartbeat to age out), so this never takes a live process's id.
pub fn is_gone(token: &str) -> bool {
    let mut parts = token.split('/');
    let (Some(boot), Some(ns), Some(pid)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if boot.is_empty() || ns.is_empty() || boot != boot_id() || ns != pid_namespace() {
        return false;
    }
    // A PID this process has counts as running too: tests run several hubs in one
    // process.
    !Path::new(&format!("/proc/{pid}")).exists()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().replace('/', "_"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_process_is_not_gone_and_an_exited_one_is() {
        let me = new_token();
        assert_ne!(me, new_token(), "every start draws a new token");
        assert!(!is_gone(&me), "this process runs");
        let prefix: Vec<&str> = me.split('/').take(2).collect();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let child_pid = child.id();
        child.wait().unwrap();
        let exited = format!("{}/{}/{child_pid}/0", prefix[0], prefix[1]);
        if cfg!(target_os = "linux") {
            assert!(is_gone(&exited), "{exited}");
        }
        // Another machine's process, or one nothing is known of, is never known gone.
        assert!(!is_gone(&format!("other-boot/{}/{child_pid}/0", prefix[1])));
        assert!(!is_gone(&format!("//{child_pid}/0")));
        assert!(!is_gone("garbage"));
    }
}
